"""Notification preferences: the fields people set (PREFERENCE), who may set whose, and every write of them.

The page "My preferences" (and an admin's page for another user) and the API's /preferences call the functions
below, which validate through PREFERENCE, decide who may write what, audit and flush (the caller commits).

Who sees and changes which preference (webapp.tenancy's rule for a person's own rows):

- A preference row is one user's, for one customer or (customer empty) for all the user's customers.
- **Your own** preferences you see and change whatever your role, on the page or with your token (a viewer
  too). An API key acts for its owner only with the write scope (a read-only key changes nothing), and a key
  limited to a customer acts for that customer, not as its owner: its owner's preferences are not its own.
- **Someone else's** are seen by whoever sees that person (one for a customer, only by whoever also sees that
  customer) and changed only by an admin who sees every customer the person belongs to: never an admin's
  by an admin limited to some customers, never a user of another customer.
- Creating one through the API, leaving user_id out means the caller's own user; a key that is no person
  (limited to a customer, or without owner) must say whose (422). The customer must be one the caller sees.
"""

from __future__ import annotations

from typing import Any

from flask import abort
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from webapp import tenancy
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.fields import Boolean, Choice, Choices, Clock, Email, Integer, Spec, TextList, TimeZone
from webapp.inputs import is_id
from webapp.models import (
    DEFAULT_CHANNELS,
    EVENT_KINDS,
    EVENT_TYPES,
    PERSONAL_CHANNELS,
    STORM_EMAIL_LIMIT,
    STORM_SMS_LIMIT,
    STORM_WINDOW_MINUTES,
    Customer,
    NotificationPreference,
    Role,
    Severity,
    User,
)
from webapp.services import audit
from webapp.services.bulk import insert_returning

BOTH_ENDS = "Give both ends of the quiet hours, or neither."


def _quiet_hours(values: dict[str, Any]) -> dict[str, str]:
    start, end = values.get("quiet_hours_start"), values.get("quiet_hours_end")
    if start is not None and end is None:
        return {"quiet_hours_start": BOTH_ENDS}
    if end is not None and start is None:
        return {"quiet_hours_end": BOTH_ENDS}
    if start is not None and start == end:
        return {"quiet_hours_end": "Quiet hours must not start and end at the same time."}
    return {}


def _min_severity(channel: str, label: str, default: Severity) -> Choice:
    return Choice(
        name=f"min_severity_{channel}",
        label=label,
        choices=tuple(Severity),
        default=default,
        section="Channels",
        width=4,
    )


def _storm_number(name: str, label: str, default: int, maximum: int) -> Integer:
    return Integer(
        name=name,
        label=label,
        default=default,
        required=True,
        minimum=1,
        maximum=maximum,
        section="Storm guard",
        width=4,
    )


PREFERENCE = Spec(
    "preference",
    (
        Choices(
            name="enabled_channels",
            label="Channels",
            choices=PERSONAL_CHANNELS,
            labels={c: c.label for c in PERSONAL_CHANNELS},
            default=DEFAULT_CHANNELS,  # a phone call only for those who ask for it
            section="Channels",
        ),
        _min_severity("web", "Minimum severity in the inbox (web)", Severity.LOW),
        _min_severity("email", "Minimum severity by email", Severity.HIGH),
        _min_severity("sms", "Minimum severity by SMS", Severity.CRITICAL),
        _min_severity("voice", "Minimum severity by phone call", Severity.CRITICAL),
        Email(name="override_email", label="Send email to (instead of the login address)", section="Channels"),
        Choices(
            name="event_types",
            label="Event types (none ticked: all)",
            choices=EVENT_TYPES,
            labels=dict(EVENT_KINDS.choices()),
            section="What",
        ),
        TextList(
            name="job_types",
            label="Job types (comma-separated; empty: all)",
            help="e.g. backup, etl-nightly",
            section="What",
        ),
        Boolean(
            name="notify_on_resolve",
            label="Tell me when an alert I was notified of resolves",
            default=True,
            section="What",
        ),
        TimeZone(name="timezone", label="Time zone", section="When"),
        Clock(name="quiet_hours_start", label="Quiet hours from", section="When", width=6),
        Clock(name="quiet_hours_end", label="Quiet hours until", section="When", width=6),
        Boolean(
            name="critical_bypasses_quiet_hours",
            label="Critical alerts ring through quiet hours",
            default=True,
            section="When",
        ),
        Integer(
            name="max_notifications_per_hour",
            label="At most this many per hour (empty: no cap)",
            minimum=1,
            maximum=10_000,
            section="When",
        ),
        Boolean(name="enable_aggregation", label="Group bursts into one digest", section="When"),
        Integer(
            name="aggregation_window_seconds",
            label="Digest window (seconds)",
            default=120,
            required=True,
            minimum=10,
            maximum=86_400,
            section="When",
        ),
        Boolean(
            name="storm_guard",
            label="Storm guard: past the limits below, hold the rest for one summary",
            default=True,
            section="Storm guard",
        ),
        _storm_number("storm_sms_limit", "SMS sent at once in a window", STORM_SMS_LIMIT, 1_000),
        _storm_number("storm_email_limit", "Emails sent at once in a window", STORM_EMAIL_LIMIT, 1_000),
        _storm_number("storm_window_minutes", "Window (minutes)", STORM_WINDOW_MINUTES, 1_440),
    ),
    checks=(_quiet_hours,),
)
ADDRESS = ("user_id", "customer_id")  # whose preference, for which customer: set at creation, never changed


# --- who may see and change which preference --------------------------------------------------------


def _sees(principal: tenancy.Principal, user: User, customer_id: int | None) -> bool:
    """A person's preferences are seen by whoever sees the person (tenancy); one for a customer, also only by
    whoever sees that customer (or by the person)."""
    if not principal.can_see_user(user):
        return False
    return customer_id is None or principal.is_self(user.id) or principal.can_see(customer_id)


def _check_writer(principal: tenancy.Principal) -> None:
    """403 for a read-only API key (a person's own token writes their own preferences, whatever their role)."""
    if principal.api_key is not None:
        principal.require(Role.OPERATOR)


def check_change(principal: tenancy.Principal, user: User, customer_id: int | None = None) -> None:
    """404 unless `principal` sees this preference of `user`; 403 if it may not change it."""
    if not _sees(principal, user, customer_id):
        abort(404, description="No such preference here.")
    principal.check_change_person(user, what="notification preferences")


def scoped(principal: tenancy.Principal, query):
    """`query` of NotificationPreference limited to the rows `principal` sees."""
    users = principal.visible_user_ids()
    if users is None:
        return query
    theirs = NotificationPreference.user_id.in_(users) & (
        NotificationPreference.customer_id.is_(None) | NotificationPreference.customer_id.in_(principal.customer_ids)
    )
    if principal.own_user_id is not None:
        theirs = theirs | (NotificationPreference.user_id == principal.own_user_id)
    return query.where(theirs)


def visible(principal: tenancy.Principal, pref_id: int) -> NotificationPreference:
    pref = db.session.get(NotificationPreference, pref_id)
    if pref is None or not _sees(principal, pref.user, pref.customer_id):
        abort(404, description="No such preference here.")
    return pref


def changeable(principal: tenancy.Principal, pref_id: int) -> NotificationPreference:
    """The preference to change or delete: 403 for a read-only key, 404 unseen, 403 seen but not changeable."""
    _check_writer(principal)
    pref = visible(principal, pref_id)
    check_change(principal, pref.user, pref.customer_id)
    return pref


def zone_name(pref_timezone: str | None, user_timezone: str | None) -> str:
    """The zone a person reads times in: their preference's zone when they set one, else their account's."""
    return pref_timezone if pref_timezone and pref_timezone != "UTC" else user_timezone or "UTC"


def zone_setting(user_id: int):
    """The zone of `user_id`'s preference for all customers, as a scalar subquery (None without one)."""
    return (
        db.select(NotificationPreference.timezone)
        .where(NotificationPreference.user_id == user_id, NotificationPreference.customer_id.is_(None))
        .scalar_subquery()
    )


def reading_zone(user: User) -> str:
    """The zone of `user`'s own times (pages, quiet hours): their preference for all customers, else their account's."""
    return zone_name(db.session.scalar(db.select(zone_setting(user.id))), user.timezone)


def of(user: User, customer_id: int | None = None) -> NotificationPreference:
    """The user's preference for `customer_id` (None: all their customers): the stored row, or a new unsaved one
    at the defaults (stored by `update`)."""
    pref = db.session.scalar(
        db.select(NotificationPreference).where(
            NotificationPreference.user_id == user.id,
            NotificationPreference.customer_id.is_(None)
            if customer_id is None
            else NotificationPreference.customer_id == customer_id,
        )
    )
    return pref or NotificationPreference(user_id=user.id, customer_id=customer_id, **PREFERENCE.initial())


# --- the writes -------------------------------------------------------------------------------------


def _where(pref: NotificationPreference) -> str:
    return "all customers" if pref.customer_id is None else f"customer {pref.customer_id}"


def _record(principal: tenancy.Principal, action: str, user: User, pref: NotificationPreference, changes) -> None:
    audit.record(
        actor=principal.user,
        action=action,
        target=user,
        summary=f"notification preferences of {user.email} ({_where(pref)})",
        changes=changes,
    )


def _owner(principal: tenancy.Principal, payload: dict) -> tuple[User | None, int | None, dict[str, str]]:
    """Whose preference a create makes (user_id; left out: the caller's own user), for which customer."""
    if "user_id" in payload:
        user_id = payload["user_id"]
    elif principal.own_user_id is not None:
        user_id = principal.own_user_id
    else:
        return None, None, {"user_id": "This key acts for its customer, not for a person: say whose (user_id)."}
    user = db.session.get(User, user_id) if is_id(user_id) else None
    if user is None or not principal.can_see_user(user):
        return None, None, {"user_id": "No such user here."}
    customer_id = payload.get("customer_id")
    if customer_id is not None and (
        not is_id(customer_id) or db.session.get(Customer, customer_id) is None or not principal.can_see(customer_id)
    ):
        return user, None, {"customer_id": "No such customer here (null: all of the user's customers)."}
    if not principal.can_change_person(user):
        return user, customer_id, {"user_id": "Only an admin sets another person's notification preferences."}
    return user, customer_id, {}


def create(principal: tenancy.Principal, payload: dict[str, Any]) -> NotificationPreference:
    """A new preference (the API's POST): 409 if the user has one for that customer already."""
    _check_writer(principal)
    user, customer_id, errors = _owner(principal, payload)
    values = PREFERENCE.validate(payload, also=ADDRESS, refused=errors)
    pref = of(user, customer_id)
    if inspect(pref).persistent:
        abort(409, description="This user already has a preference for this customer: update it instead.")
    changes = PREFERENCE.apply(pref, values)
    try:
        with db.session.begin_nested():
            db.session.add(pref)
    except IntegrityError:
        abort(409, description="This user already has a preference for this customer: update it instead.")
    _record(principal, "preference.create", user, pref, changes)
    return pref


def update(
    principal: tenancy.Principal, pref: NotificationPreference, payload: dict[str, Any], *, partial: bool = False
) -> dict[str, Any]:
    """Set the fields of `payload` (every field, the omitted ones at their defaults, unless `partial`); an unsaved
    row from `of()` is stored. Returns {field: [old, new]} of what changed."""
    user = pref.user or db.session.get(User, pref.user_id)
    check_change(principal, user, pref.customer_id)
    moved = {
        name: "Cannot change: this is whose and for which customer the preference is; create another one."
        for name in ADDRESS
        if name in payload and payload[name] != getattr(pref, name)
    }
    current = PREFERENCE.values_of(pref)
    values = PREFERENCE.validate(payload, current=current, partial=partial, also=ADDRESS, refused=moved)
    new = not inspect(pref).persistent
    changes = PREFERENCE.apply(pref, values)
    if new:
        db.session.add(pref)
    if new or changes:
        db.session.flush()
        _record(principal, "preference.update", user, pref, changes)
    return changes


def delete(principal: tenancy.Principal, pref: NotificationPreference) -> None:
    user = pref.user or db.session.get(User, pref.user_id)
    check_change(principal, user, pref.customer_id)
    _record(principal, "preference.delete", user, pref, PREFERENCE.dump(pref))
    db.session.delete(pref)
    db.session.flush()


def bulk_update(
    principal: tenancy.Principal,
    user_ids: list[int],
    *,
    channels_on: set[str] = frozenset(),
    channels_off: set[str] = frozenset(),
    payload: dict[str, Any] | None = None,
) -> int:
    """Apply one change to many users' all-customers preferences (creating missing rows). Returns how many."""
    values = PREFERENCE.validate(payload or {}, partial=True)
    if "enabled_channels" in values:
        raise InvalidPayload("Not a valid change.", {"enabled_channels": "Turn channels on or off one by one."})
    user_ids = sorted(set(user_ids))
    users = db.session.scalars(db.select(User).where(User.id.in_(user_ids))).all() if user_ids else []
    if len(users) != len(user_ids):
        abort(404, description="No such user here.")
    for user in users:
        check_change(principal, user)
    if not users:
        return 0
    have = set(
        db.session.scalars(
            db.select(NotificationPreference.user_id).where(
                NotificationPreference.user_id.in_(user_ids), NotificationPreference.customer_id.is_(None)
            )
        )
    )
    missing = [uid for uid in user_ids if uid not in have]
    if missing:
        insert_returning(
            NotificationPreference,
            [{"user_id": uid, "customer_id": None, **PREFERENCE.initial()} for uid in missing],
            NotificationPreference.__table__.c.id,
        )
    prefs = db.session.scalars(
        db.select(NotificationPreference).where(
            NotificationPreference.user_id.in_(user_ids), NotificationPreference.customer_id.is_(None)
        )
    ).all()
    channels = [str(c) for c in PERSONAL_CHANNELS]
    for pref in prefs:
        kept = [c for c in (pref.enabled_channels or []) if c not in channels_off]
        kept += [c for c in channels if c in channels_on and c not in kept]
        pref.enabled_channels = [c for c in channels if c in kept] + [c for c in kept if c not in channels]
        PREFERENCE.apply(pref, values)
    db.session.flush()
    described = {name: PREFERENCE[name].dump(value) for name, value in values.items()}
    if channels_on:
        described["channels_on"] = sorted(channels_on)
    if channels_off:
        described["channels_off"] = sorted(channels_off)
    audit.record(
        actor=principal.user,
        action="preference.bulk_update",
        summary=f"preferences changed for {len(prefs)} users",
        changes={"users": user_ids, **described},
    )
    return len(prefs)
