"""Tickets: creation and changes with their timeline, a customer's SLA rules (policies, business hours, holidays:
sla_policies), SLA deadlines and the sweep (sla), reports and list queries."""
