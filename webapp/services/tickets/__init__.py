"""Tickets: creation and changes with their timeline, SLA deadlines and the sweep, reports and list queries."""
