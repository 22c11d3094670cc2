"""A customer's SLA rules: a policy per priority, the business hours and the holidays (the SLA pages' writes).

The fields of each are listed once (POLICY, CALENDAR, HOLIDAY); the pages' forms derive from them and these
functions validate through them. Whoever sees the customer reads its rules; only an admin changes them (404
for another customer, 403 for the others). Each change recomputes the deadlines of the customer's unresolved
tickets it affects (webapp.services.tickets.sla, each ticket's timeline saying why), is audited, and is
flushed, never committed.
"""

from __future__ import annotations

from typing import Any

from flask import abort

from webapp import tenancy
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.fields import Boolean, Choices, Day, DayMinute, Integer, Spec, Text, TimeZone
from webapp.models import BusinessCalendar, Customer, Holiday, Priority, Role, SlaPolicy
from webapp.services import audit
from webapp.services.tickets import sla

WEEK = 7 * 24 * 60  # minutes
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _warning_before_deadline(values: dict[str, Any]) -> dict[str, str]:
    target, warning = values.get("resolution_minutes"), values.get("warning_minutes")
    if target is not None and warning is not None and warning >= target:
        return {"warning_minutes": "The warning must come before the deadline: use fewer minutes than the target."}
    return {}


POLICY = Spec(
    "SLA policy",
    (
        Integer(
            name="resolution_minutes", label="Resolution target (minutes)", required=True, minimum=1, maximum=52 * WEEK
        ),
        Integer(
            name="first_response_minutes",
            label="First-response target (minutes, optional)",
            minimum=1,
            maximum=52 * WEEK,
        ),
        Integer(
            name="warning_minutes",
            label="Warn this long before the deadline (minutes)",
            default=60,
            required=True,
            minimum=0,
            maximum=WEEK,
        ),
        Boolean(name="business_hours_only", label="Count business hours only (otherwise 24/7)"),
        Integer(
            name="escalation_minutes",
            label="Escalate an unacknowledged breach after (minutes, optional)",
            minimum=1,
            maximum=WEEK,
        ),
        Integer(
            name="escalation_interval_minutes", label="Then again every (minutes, optional)", minimum=1, maximum=WEEK
        ),
        Integer(
            name="escalation_limit", label="Escalation levels at most", default=2, required=True, minimum=0, maximum=20
        ),
    ),
    checks=(_warning_before_deadline,),
)


def _working_hours(values: dict[str, Any]) -> dict[str, str]:
    errors = {}
    if values.get("working_days") == []:
        errors["working_days"] = "Choose at least one working day."
    start, end = values.get("start"), values.get("end")
    if start is not None and end is not None and end <= start:
        errors["end"] = "The day must end after it starts."
    return errors


CALENDAR = Spec(
    "business calendar",
    (
        TimeZone(name="timezone", label="Time zone"),
        Choices(
            name="working_days",
            label="Working days",
            choices=tuple(range(7)),
            labels=dict(enumerate(DAY_NAMES)),
            default=(0, 1, 2, 3, 4),
        ),
        DayMinute(name="start", attr="start_minute", label="Day starts (HH:MM)", default=9 * 60, required=True),
        DayMinute(
            name="end",
            attr="end_minute",
            label="Day ends (HH:MM, 24:00 for midnight)",
            default=17 * 60,
            required=True,
            example="17:00",
        ),
    ),
    checks=(_working_hours,),
)

HOLIDAY = Spec(
    "holiday",
    (
        Day(name="day", label="Date", required=True),
        Text(name="name", label="Name", default="Holiday", blank_is_default=True, max_length=120),
    ),
)


# --- who -----------------------------------------------------------------------------------------------


def customer_for(principal: tenancy.Principal, customer_id: int) -> Customer:
    """The customer whose SLA rules are asked for: 404 unless `principal` sees it."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404, description="No such customer.")
    principal.check_see(customer.id)
    return customer


def may_change(principal: tenancy.Principal) -> bool:
    return principal.allows(Role.ADMIN)


def check_change(principal: tenancy.Principal, customer: Customer) -> None:
    """404 for a customer it does not see; 403 unless an admin."""
    principal.check_see(customer.id)
    if not may_change(principal):
        abort(403, description="Only an admin changes SLA policies, business hours and holidays.")


def _by(principal: tenancy.Principal) -> str:
    return principal.user.name if principal.user is not None else principal.label


# --- what the pages show ---------------------------------------------------------------------------


def policy_values(customer: Customer, priority: Priority) -> dict[str, Any]:
    """The policy's fields (a priority without a policy: the defaults)."""
    policy = sla.policy_for(customer.id, priority)
    return POLICY.values_of(policy) if policy is not None else POLICY.initial()


def calendar_values(customer: Customer) -> dict[str, Any]:
    """The business hours (none set: Monday to Friday, 09:00-17:00 in the customer's time zone)."""
    calendar = customer.business_calendar
    if calendar is not None:
        return CALENDAR.values_of(calendar)
    return {**CALENDAR.initial(), "timezone": customer.timezone}


# --- the writes -------------------------------------------------------------------------------------


def save_policy(
    principal: tenancy.Principal, customer: Customer, priority: Priority, payload: dict[str, Any]
) -> tuple[SlaPolicy, int]:
    """Create or replace the customer's policy for `priority`. Returns it and how many deadlines moved."""
    check_change(principal, customer)
    policy = sla.policy_for(customer.id, priority)
    values = POLICY.validate(payload)
    created = policy is None
    if created:
        policy = SlaPolicy(customer_id=customer.id, priority=priority)
        db.session.add(policy)
    changes = POLICY.apply(policy, values)
    db.session.flush()
    moved = sla.recompute_customer(
        customer.id, priority, reason=f"SLA policy for {priority} priority changed by {_by(principal)}"
    )
    audit.record(
        actor=principal.user,
        action="sla_policy.create" if created else "sla_policy.update",
        target=policy,
        summary=f"{customer.name} {priority}: {moved} ticket deadline(s) recomputed",
        changes=changes,
    )
    return policy, moved


def delete_policy(principal: tenancy.Principal, customer: Customer, priority: Priority) -> int:
    """Remove the policy for `priority`: its tickets have no deadline any more. Returns how many moved."""
    check_change(principal, customer)
    policy = sla.policy_for(customer.id, priority)
    if policy is None:
        abort(404, description=f"{customer.name} has no policy for {priority} priority.")
    audit.record(actor=principal.user, action="sla_policy.delete", target=policy, summary=f"{customer.name} {priority}")
    db.session.delete(policy)
    db.session.flush()
    return sla.recompute_customer(
        customer.id, priority, reason=f"SLA policy for {priority} priority removed by {_by(principal)}"
    )


def _recompute_business(customer: Customer, *, reason: str) -> int:
    """Recompute the deadlines of the priorities whose policy counts business hours only."""
    levels = db.session.scalars(
        db.select(SlaPolicy.priority).where(SlaPolicy.customer_id == customer.id, SlaPolicy.business_hours_only)
    ).all()
    return sum(sla.recompute_customer(customer.id, level, reason=reason) for level in levels)


def save_calendar(principal: tenancy.Principal, customer: Customer, payload: dict[str, Any]) -> int:
    """Set the customer's business hours. Returns how many deadlines moved."""
    check_change(principal, customer)
    values = CALENDAR.validate(payload)
    calendar = customer.business_calendar or BusinessCalendar(customer_id=customer.id)
    changes = CALENDAR.apply(calendar, values)
    db.session.add(calendar)
    db.session.flush()
    moved = _recompute_business(customer, reason=f"business hours changed by {_by(principal)}")
    audit.record(
        actor=principal.user,
        action="business_calendar.update",
        target=calendar,
        summary=f"{customer.name}: {moved} deadline(s) recomputed",
        changes=changes,
    )
    return moved


def add_holiday(principal: tenancy.Principal, customer: Customer, payload: dict[str, Any]) -> tuple[Holiday, int]:
    """A day off for the customer's business clock. Returns it and how many deadlines moved."""
    check_change(principal, customer)
    values = HOLIDAY.validate(payload)
    taken = db.session.scalar(
        db.select(Holiday.id).where(Holiday.customer_id == customer.id, Holiday.day == values["day"])
    )
    if taken is not None:
        raise InvalidPayload(f"Not a valid {HOLIDAY.noun}.", {"day": "This day is already a holiday."})
    holiday = Holiday(customer_id=customer.id)
    HOLIDAY.apply(holiday, values)
    db.session.add(holiday)
    db.session.flush()
    moved = _recompute_business(customer, reason=f"holiday {holiday.day} ({holiday.name}) added")
    audit.record(
        actor=principal.user, action="holiday.create", target=holiday, summary=f"{customer.name} {holiday.day}"
    )
    return holiday, moved


def remove_holiday(principal: tenancy.Principal, customer: Customer, holiday_id: int) -> int:
    """Remove one of the customer's holidays. Returns how many deadlines moved."""
    check_change(principal, customer)
    holiday = db.session.get(Holiday, holiday_id)
    if holiday is None or holiday.customer_id != customer.id:
        abort(404, description="No such holiday.")
    audit.record(
        actor=principal.user, action="holiday.delete", target=holiday, summary=f"{customer.name} {holiday.day}"
    )
    db.session.delete(holiday)
    db.session.flush()
    return _recompute_business(customer, reason=f"holiday {holiday.day} removed")
