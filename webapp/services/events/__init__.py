"""Events: storing normalised events (deduplicated by the database) and routing them; escalation of what nobody
acknowledges."""
