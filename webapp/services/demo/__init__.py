"""Demo data for a new team: `flask demo seed`."""
