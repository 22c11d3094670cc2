"""Schedules, their layers and overrides: the one write path (pages call it; the fields come from the Specs
below), the tenant rules, and the warnings an override gets before it is stored.

A customer's schedule is changed by its operators and the admins, read by its viewers; a schedule of no
customer is the operations team's own (admins only), as every customer-less row (webapp.tenancy). A layer's
members are people of the schedule's customer; an override's cover is someone the person writing it sees,
with a warning when they are not one of the customer's people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import abort

from webapp import tenancy
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.fields import Choice, Clock, Day, Integer, Spec, Text, TextList, TimeZone
from webapp.fields.kinds import Field, Invalid
from webapp.inputs import is_id
from webapp.models import (
    Role,
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    User,
    user_customer,
    utcnow,
)
from webapp.services import audit
from webapp.services.oncall import Shift, shifts, zone_of

CUSTOMER = "customer_id"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LOOKAHEAD = timedelta(days=35)  # how far "next" and the next hand-off are looked for
_WINDOW = re.compile(r"^\s*([A-Za-z]{3})(?:\s*-\s*([A-Za-z]{3}))?((?:\s*,\s*[A-Za-z]{3})*)\s+(\S+)\s*-\s*(\S+)\s*$")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


# --- fields --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Members(TextList):
    """People in rotation order, by email (the service turns them into user ids)."""

    max_items: int = 50
    max_length: int = 254

    def parse(self, value: Any) -> Any:
        return [email.lower() for email in super().parse(value)]


@dataclass(frozen=True, kw_only=True)
class Windows(Field):
    """When a layer covers, in the schedule's zone: [{"days": [0..6] (Monday 0), "from": "HH:MM", "to": "HH:MM"}];
    on a page one line like "Mon-Fri 09:00-18:00; Sat 10:00-14:00". A window whose end is not after its start
    runs past midnight. Empty: every hour."""

    default: tuple = ()

    def is_empty(self, value: Any) -> bool:
        return value is None or value == []

    def empty(self) -> Any:
        return []

    def initial(self) -> Any:
        return []

    def parse(self, value: Any) -> Any:
        if isinstance(value, str):  # a page's line that could not be read
            raise Invalid(f"Cannot read “{value[:40]}”: write each window like Mon-Fri 09:00-18:00, separated by “;”.")
        if not isinstance(value, list) or len(value) > 14:
            raise Invalid(
                'A list of at most 14 windows like {"days": [0, 1, 2, 3, 4], "from": "09:00", "to": "18:00"}.'
            )
        windows = []
        for window in value:
            days = window.get("days") if isinstance(window, dict) else None
            if (
                not isinstance(days, list)
                or not days
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days)
                or set(window) != {"days", "from", "to"}
                or not all(isinstance(window[k], str) and _CLOCK.fullmatch(window[k]) for k in ("from", "to"))
            ):
                raise Invalid('Each window: {"days": [0..6] (Monday 0), "from": "HH:MM", "to": "HH:MM"}.')
            windows.append({"days": sorted(set(days)), "from": window["from"], "to": window["to"]})
        return windows

    def dump(self, value: Any) -> Any:
        return list(value or [])

    def read_form(self, data: Any) -> Any:
        """'Mon-Fri 09:00-18:00; Sat 10:00-14:00' -> windows; what cannot be read stays text (parse refuses it)."""
        text = (data or "").strip()
        if not text:
            return []
        windows = []
        for part in re.split(r"[;\n]", text):
            if not part.strip():
                continue
            match = _WINDOW.match(part)
            names = [n.strip().title() for n in ((match[3] or "").split(",")[1:] if match else [])]
            if match is None or not all(n in DAYS for n in [match[1].title(), (match[2] or match[1]).title(), *names]):
                return part.strip()
            first, last = DAYS.index(match[1].title()), DAYS.index((match[2] or match[1]).title())
            days = [(first + n) % 7 for n in range((last - first) % 7 + 1)] + [DAYS.index(n) for n in names]
            windows.append({"days": days, "from": match[4], "to": match[5]})
        return windows

    def form_value(self, value: Any) -> Any:
        return "; ".join(describe_window(w) for w in value or [])

    def type_schema(self) -> dict:
        return {"type": "array", "items": {"type": "object"}}


@dataclass(frozen=True, kw_only=True)
class LocalTime(Field):
    """A date and time on the wall clock of the schedule's zone, YYYY-MM-DDTHH:MM (the service places it)."""

    def read_form(self, data: Any) -> Any:
        return (data or "").strip() or None

    def parse(self, value: Any) -> Any:
        try:
            if not isinstance(value, str) or not 16 <= len(value) <= 19:
                raise ValueError
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                raise ValueError
            return parsed.replace(second=0, microsecond=0)
        except ValueError:
            raise Invalid("Use a date and time as YYYY-MM-DDTHH:MM, e.g. 2026-12-24T20:00.") from None

    def dump(self, value: Any) -> Any:
        return None if value is None else value.isoformat(timespec="minutes")

    def form_value(self, value: Any) -> Any:
        return self.dump(value) or ""

    def input_options(self) -> dict[str, Any]:
        return {"render_kw": {"type": "datetime-local"}}


def describe_window(window: dict) -> str:
    days = window["days"]
    run = len(days) > 2 and days == list(range(days[0], days[-1] + 1))
    named = f"{DAYS[days[0]]}-{DAYS[days[-1]]}" if run else ",".join(DAYS[d] for d in days)
    return f"{named} {window['from']}-{window['to']}"


def _custom_hours(values: dict[str, Any]) -> dict[str, str]:
    if values.get("rotation") == Rotation.CUSTOM and not values.get("rotation_hours"):
        return {"rotation_hours": "A custom rotation needs its length in hours."}
    return {}


def _has_members(values: dict[str, Any]) -> dict[str, str]:
    return {} if values.get("members") else {"members": "Add at least one member."}


def _ends_after_start(values: dict[str, Any]) -> dict[str, str]:
    start, end = values.get("starts_at"), values.get("ends_at")
    if isinstance(start, datetime) and isinstance(end, datetime) and end <= start:
        return {"ends_at": "The end must be after the start."}
    return {}


SCHEDULE = Spec(
    "schedule",
    (
        Text(name="name", label="Name", required=True, max_length=120),
        TimeZone(name="time_zone", label="Time zone", help="Hand-offs and restrictions are in this zone"),
    ),
)
LAYER = Spec(
    "layer",
    (
        Text(name="name", label="Layer name", required=True, max_length=80, default="Primary"),
        Choice(
            name="rotation",
            label="Rotation",
            choices=tuple(Rotation),
            default=Rotation.WEEKLY,
            labels={Rotation.DAILY: "daily", Rotation.WEEKLY: "weekly", Rotation.CUSTOM: "custom (hours)"},
        ),
        Integer(
            name="rotation_hours",
            label="Custom length (hours)",
            minimum=1,
            maximum=24 * 90,
            default=168,
            help="Custom rotations only: hand-off every so many hours of absolute time",
        ),
        Clock(name="handoff_time", label="Hand-off time", default=time(9, 0), required=True),
        Day(
            name="starts_on",
            label="First hand-off on",
            required=True,
            help="A weekly rotation hands off on this weekday",
        ),
        Members(name="members", label="Members, in rotation order", attr="member_ids", help="Emails, comma-separated"),
        Windows(name="restrictions", label="Restrictions", help="e.g. Mon-Fri 09:00-18:00; empty: every hour"),
        Integer(
            name="position",
            label="Position",
            minimum=0,
            maximum=99,
            default=0,
            help="Higher layers win wherever they have someone",
        ),
    ),
    checks=(_custom_hours, _has_members),
)
OVERRIDE = Spec(
    "override",
    (
        Integer(name="user", label="Who covers", attr="user_id", required=True, minimum=1),
        LocalTime(name="starts_at", label="From", required=True, help="In the schedule's time zone"),
        LocalTime(name="ends_at", label="Until", required=True),
        Text(name="note", label="Note", max_length=200, default=""),
    ),
    checks=(_ends_after_start,),
)


# --- reading -------------------------------------------------------------------------------------------------


def scoped(principal: tenancy.Principal, query):
    return principal.scoped(query, Schedule.customer_id)


def visible(principal: tenancy.Principal, schedule_id: int) -> Schedule:
    schedule = db.session.get(Schedule, schedule_id)
    if schedule is None:
        abort(404, description="No such schedule here.")
    principal.check_see(schedule.customer_id)
    return schedule


def visible_layer(principal: tenancy.Principal, layer_id: int) -> ScheduleLayer:
    """A layer, seen through its schedule (404 where the schedule is not the principal's to see)."""
    layer = db.session.get(ScheduleLayer, layer_id)
    if layer is None:
        abort(404, description="No such layer here.")
    principal.check_see(layer.schedule.customer_id)
    return layer


def visible_override(principal: tenancy.Principal, override_id: int) -> ScheduleOverride:
    override = db.session.get(ScheduleOverride, override_id)
    if override is None:
        abort(404, description="No such override here.")
    principal.check_see(db.session.get(Schedule, override.schedule_id).customer_id)
    return override


def eligible_members(customer_id: int | None) -> list[User]:
    """Who may be in a layer: the active people of the schedule's customer (every active user for the operations
    team's schedule). An admin who takes turns for a customer is made one of its people first: a person of no
    customer is not for that customer's operators to see (webapp.tenancy)."""
    query = db.select(User).where(User.is_active.is_(True)).order_by(User.name, User.id)
    if customer_id is not None:
        members = db.select(user_customer.c.user_id).where(user_customer.c.customer_id == customer_id)
        query = query.where(User.id.in_(members))
    return list(db.session.scalars(query.limit(500)))


def now_and_next(schedule: Schedule, *, now: datetime | None = None) -> tuple[Shift | None, Shift | None]:
    """The shift under way (None: nobody is on call) and the next one to start, within LOOKAHEAD."""
    now = now or utcnow()
    ahead = shifts(schedule, now, now + LOOKAHEAD)
    current = ahead[0] if ahead and ahead[0].starts_at == now else None
    upcoming = ahead[1:] if current else ahead
    return current, (upcoming[0] if upcoming else None)


def next_handoff(schedule: Schedule, after: datetime) -> datetime:
    """When the on-call person may next change after `after` (LOOKAHEAD later when nothing changes before)."""
    for shift in shifts(schedule, after, after + LOOKAHEAD):
        if shift.starts_at > after:
            return shift.starts_at
        if shift.ends_at < after + LOOKAHEAD:
            return shift.ends_at  # nobody after this one: a change all the same (the sweep says nothing then)
    return after + LOOKAHEAD


def _replan(schedule: Schedule, now: datetime | None = None) -> None:
    """After a change, the next hand-off notice is recomputed (the sweep claims it from this column)."""
    db.session.flush()
    db.session.refresh(schedule)
    schedule.next_notice_at = next_handoff(schedule, now or utcnow())


# --- schedules -----------------------------------------------------------------------------------------------


def _customer(principal: tenancy.Principal, payload: dict[str, Any]) -> tuple[int | None, dict[str, str]]:
    """The customer a new schedule is for: an id the principal sees, or None (the operations team's: admins)."""
    customer_id = payload.get(CUSTOMER, principal.only_customer_id())
    if customer_id in (None, "", 0):
        return None, {}
    if not is_id(customer_id) or principal.customer_named(customer_id) is None:
        return None, {CUSTOMER: "No such customer here."}
    return customer_id, {}


def create(principal: tenancy.Principal, payload: dict[str, Any]) -> Schedule:
    principal.require(Role.OPERATOR)
    customer_id, refused = _customer(principal, payload)
    values = SCHEDULE.validate(payload, also=(CUSTOMER,), refused=refused)
    principal.check_change(customer_id)
    schedule = Schedule(customer_id=customer_id)
    changes = SCHEDULE.apply(schedule, values)
    db.session.add(schedule)
    db.session.flush()
    audit.record(
        actor=principal.user, action="schedule.create", target=schedule, summary=schedule.name, changes=changes
    )
    return schedule


def update(principal: tenancy.Principal, schedule: Schedule, payload: dict[str, Any]) -> dict[str, Any]:
    principal.check_change(schedule.customer_id)
    values = SCHEDULE.validate(payload, current=SCHEDULE.values_of(schedule))
    changes = SCHEDULE.apply(schedule, values)
    if changes:
        _replan(schedule)
        audit.record(
            actor=principal.user, action="schedule.update", target=schedule, summary=schedule.name, changes=changes
        )
    return changes


def delete(principal: tenancy.Principal, schedule: Schedule) -> None:
    principal.check_change(schedule.customer_id)
    audit.record(actor=principal.user, action="schedule.delete", target=schedule, summary=schedule.name)
    db.session.delete(schedule)
    db.session.flush()


# --- layers --------------------------------------------------------------------------------------------------


def _member_ids(schedule: Schedule, emails: list[str]) -> tuple[list[int], dict[str, str]]:
    """The ids of the people these emails name, in order; an email that names nobody eligible is refused
    without saying whether that person exists elsewhere."""
    eligible = {user.email.lower(): user.id for user in eligible_members(schedule.customer_id)}
    unknown = [email for email in emails if email not in eligible]
    if unknown:
        return [], {"members": f"Not one of this schedule's people: {', '.join(unknown[:5])}."}
    return [eligible[email] for email in emails], {}


def _layer_values(schedule: Schedule, payload: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    values = LAYER.validate(payload, current=current)
    ids, refused = _member_ids(schedule, values.get("members", []))
    if refused:
        raise InvalidPayload(f"Not a valid {LAYER.noun}.", refused)
    values["members"] = ids
    rotation = values.get("rotation")
    if rotation in (Rotation.DAILY, Rotation.WEEKLY):
        values["rotation_hours"] = 24 if rotation == Rotation.DAILY else 168
    return values


def add_layer(principal: tenancy.Principal, schedule: Schedule, payload: dict[str, Any]) -> ScheduleLayer:
    principal.check_change(schedule.customer_id)
    values = _layer_values(schedule, payload, None)
    layer = ScheduleLayer(schedule=schedule)
    changes = LAYER.apply(layer, values)
    db.session.add(layer)
    _replan(schedule)
    audit.record(
        actor=principal.user, action="schedule.layer.create", target=schedule, summary=layer.name, changes=changes
    )
    return layer


def update_layer(principal: tenancy.Principal, layer: ScheduleLayer, payload: dict[str, Any]) -> dict[str, Any]:
    schedule = layer.schedule
    principal.check_change(schedule.customer_id)
    values = _layer_values(schedule, payload, LAYER.values_of(layer))
    changes = LAYER.apply(layer, values)
    if changes:
        _replan(schedule)
        audit.record(
            actor=principal.user, action="schedule.layer.update", target=schedule, summary=layer.name, changes=changes
        )
    return changes


def delete_layer(principal: tenancy.Principal, layer: ScheduleLayer) -> None:
    schedule = layer.schedule
    principal.check_change(schedule.customer_id)
    schedule.layers.remove(layer)
    _replan(schedule)
    audit.record(actor=principal.user, action="schedule.layer.delete", target=schedule, summary=layer.name)


# --- overrides -----------------------------------------------------------------------------------------------


@dataclass
class OverridePlan:
    """A checked override before it is stored: its values in UTC, and what the person should know first."""

    user: User
    starts_at: datetime
    ends_at: datetime
    note: str
    warnings: list[str]


def plan_override(
    principal: tenancy.Principal, schedule: Schedule, payload: dict[str, Any], *, now: datetime | None = None
) -> OverridePlan:
    """Validate an override (refusing a cover the principal does not see) and list its conflicts: another
    override over the same hours, a cover who is not one of the customer's people or is deactivated, hours
    already past, hours the person is on call anyway."""
    principal.check_change(schedule.customer_id)
    values = OVERRIDE.validate(payload)
    user = db.session.get(User, values["user"]) if is_id(values["user"]) else None
    if user is None or not principal.can_see_user(user):
        raise InvalidPayload(f"Not a valid {OVERRIDE.noun}.", {"user": "No such person here."})
    zone = zone_of(schedule.time_zone)
    starts_at = values["starts_at"].replace(tzinfo=zone).astimezone(UTC)
    ends_at = values["ends_at"].replace(tzinfo=zone).astimezone(UTC)
    if ends_at - starts_at > timedelta(days=366):
        raise InvalidPayload(f"Not a valid {OVERRIDE.noun}.", {"ends_at": "An override lasts at most a year."})
    warnings = []
    overlapping = db.session.scalars(
        db.select(ScheduleOverride)
        .where(
            ScheduleOverride.schedule_id == schedule.id,
            ScheduleOverride.ends_at > starts_at,
            ScheduleOverride.starts_at < ends_at,
        )
        .order_by(ScheduleOverride.starts_at)
        .limit(5)
    )
    for other in overlapping:
        warnings.append(
            f"It overlaps the override of {other.user.name} "
            f"({_local(other.starts_at, zone)} – {_local(other.ends_at, zone)}): the newer one wins where they overlap."
        )
    if (
        schedule.customer_id is not None
        and user.role != Role.ADMIN
        and schedule.customer_id not in {c.id for c in user.customers}
    ):
        warnings.append(
            f"{user.name} is not one of {schedule.customer.name}'s people: they would be paged for its incidents."
        )
    if not user.is_active:
        warnings.append(f"{user.name} is deactivated: nobody would be paged during these hours.")
    covered = shifts(schedule, starts_at, ends_at)
    if ends_at <= (now or utcnow()):
        warnings.append("These hours are already over.")
    elif covered and all(s.user_id == user.id for s in covered):
        warnings.append(f"{user.name} is on call during all these hours anyway.")
    return OverridePlan(user, starts_at, ends_at, values["note"] or "", warnings)


def add_override(principal: tenancy.Principal, schedule: Schedule, plan: OverridePlan) -> ScheduleOverride:
    override = ScheduleOverride(
        schedule_id=schedule.id,
        user_id=plan.user.id,
        starts_at=plan.starts_at,
        ends_at=plan.ends_at,
        note=plan.note,
        created_by_id=principal.user.id if principal.user is not None else None,
    )
    db.session.add(override)
    _replan(schedule)
    audit.record(
        actor=principal.user,
        action="schedule.override.create",
        target=schedule,
        summary=f"{plan.user.name} covers {plan.starts_at:%Y-%m-%d %H:%M} – {plan.ends_at:%Y-%m-%d %H:%M} UTC",
    )
    return override


def delete_override(principal: tenancy.Principal, override: ScheduleOverride) -> None:
    schedule = db.session.get(Schedule, override.schedule_id)
    principal.check_change(schedule.customer_id)
    audit.record(
        actor=principal.user, action="schedule.override.delete", target=schedule, summary=f"override {override.id}"
    )
    db.session.delete(override)
    _replan(schedule)


def _local(at: datetime, zone) -> str:
    return at.astimezone(zone).strftime("%a %d %b %H:%M")
