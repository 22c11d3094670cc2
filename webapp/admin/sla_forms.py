"""Forms of the SLA admin pages: a policy, the business hours, a holiday. Their inputs are the fields of
POLICY, CALENDAR and HOLIDAY (webapp.services.tickets.sla_policies), which the service validates."""

from __future__ import annotations

from webapp.services.tickets.sla_policies import CALENDAR, HOLIDAY, POLICY

PolicyForm = POLICY.form("PolicyForm")
CalendarForm = CALENDAR.form("CalendarForm")
HolidayForm = HOLIDAY.form("HolidayForm")
