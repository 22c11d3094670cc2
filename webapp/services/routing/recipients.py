"""The context of one routing pass: candidates with their phones, memberships, preferences, templates and
timing state, read with a fixed number of set-based statements whatever the number of users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from webapp.extensions import db
from webapp.models import (
    Channel,
    Customer,
    Event,
    EventStatus,
    MessageTemplate,
    Notification,
    NotificationPreference,
    NotificationStatus,
    PhoneNumber,
    Role,
    Ticket,
    User,
    dedup_identity,
    user_customer,
)
from webapp.services import sms_spend
from webapp.services.routing import digest
from webapp.services.routing.rules import Rules, pick

S = NotificationStatus
NOTIFIED = (S.PENDING, S.QUEUED, S.SENDING, S.SENT, S.DELIVERED, S.DEFERRED)


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    timezone: str
    phone: str | None
    opted_out: bool
    opted_out_at: datetime | None
    opted_out_via: str | None


class Context:
    """Everything the decisions read, loaded with a fixed number of set-based statements."""

    @classmethod
    def load(cls, events, *, now, audience, only_users) -> Context:
        self = cls()
        self.now, self.audience, self.only_users = now, audience, only_users
        self.customer_ids = {e.customer_id for e in events if e.customer_id is not None}
        ticket_ids = {e.ticket_id for e in events if e.ticket_id is not None}
        self.assignees: dict[int, int] = {}
        if ticket_ids:
            self.assignees = dict(
                db.session.execute(
                    db.select(Ticket.id, Ticket.assignee_id).where(
                        Ticket.id.in_(ticket_ids), Ticket.assignee_id.is_not(None)
                    )
                ).all()
            )
        self.firing_notified = _firing_notified([e for e in events if e.status == EventStatus.RESOLVED])
        extra = set(self.assignees.values()) | {u for (_, _, u) in self.firing_notified}
        self.people, recent = _load_people(
            ids=set(only_users if only_users is not None else (audience or [])) | extra,
            customer_ids=self.customer_ids if audience is None and only_users is None else set(),
            only=only_users,
            now=now,
        )
        ids = list(self.people)
        self.members: set[tuple[int, int]] = set()
        self.customer_names: dict[int, str] = {}
        self.over_budget: dict[int, sms_spend.OverBudget] = {}  # customers past their SMS budget this month
        self.currency = current_app.config["SMS_CURRENCY"]
        if self.customer_ids:
            self.members = set(
                db.session.execute(
                    db.select(user_customer.c.user_id, user_customer.c.customer_id).where(
                        user_customer.c.customer_id.in_(self.customer_ids)
                    )
                ).all()
            )
            budgets = {}
            for customer_id, name, budget in db.session.execute(
                db.select(Customer.id, Customer.name, Customer.sms_budget_micros).where(
                    Customer.id.in_(self.customer_ids)
                )
            ).all():
                self.customer_names[customer_id], budgets[customer_id] = name, budget
            self.over_budget = sms_spend.over_budget(budgets, now=now)
        self.prefs = {}
        if ids:
            for pref in db.session.scalars(
                db.select(NotificationPreference).where(
                    NotificationPreference.user_id.in_(ids),
                    NotificationPreference.customer_id.is_(None)
                    | NotificationPreference.customer_id.in_(self.customer_ids),
                )
            ):
                self.prefs[(pref.user_id, pref.customer_id)] = pref
        self.templates = _load_templates(events, self.customer_ids)
        self.rendered: dict[tuple[int, Channel], tuple[str | None, str, str | None]] = {}
        self.channel: Channel | None = None  # forced by an escalation step: that channel alone
        self.timing = digest.Timing.load(ids, prefs=self.prefs.values(), now=now, recent=recent)
        return self

    def candidates(self, event: Event) -> list[Person]:
        if self.only_users is not None:
            return [self.people[i] for i in sorted(set(self.only_users)) if i in self.people]
        if event.status == EventStatus.RESOLVED:
            ids = {u for (key, _, u) in self.firing_notified if key == notified_key(event)}
            ids.discard((event.data or {}).get("resolved_by_id"))  # who resolved it knows
        elif self.audience is not None:
            ids = set(self.audience)
        else:
            ids = {
                p.id
                for p in self.people.values()
                if p.role == Role.ADMIN
                or (p.id, event.customer_id) in self.members
                or (p.id, event.customer_id) in self.prefs
            }
        if event.ticket_id in self.assignees and event.status != EventStatus.RESOLVED:
            ids.add(self.assignees[event.ticket_id])
        return [self.people[i] for i in sorted(ids) if i in self.people]

    def is_member(self, person: Person, event: Event) -> bool:
        if self.audience is not None and person.id in self.audience:
            return True  # the caller chose these users (escalation)
        return person.role == Role.ADMIN or (person.id, event.customer_id) in self.members

    def rules(self, person: Person, event: Event) -> Rules:
        return pick(
            self.prefs,
            user_id=person.id,
            role=person.role,
            user_timezone=person.timezone,
            customer_id=event.customer_id,
            customer_name=self.customer_names.get(event.customer_id),
        )


def notified_key(event: Event) -> tuple:
    """What an all-clear is matched by: the event's incident (every firing event of it, escalation steps
    included), or for an event outside any incident its own source and dedup key."""
    if event.incident_id:
        return ("incident", event.incident_id)
    source, scope, key, _ = dedup_identity(event)
    return (source, scope, key)


def _firing_notified(resolved: list[Event]) -> set[tuple[tuple, Channel, int]]:
    """(notified_key, channel, user id) of everyone notified of the firing side of these events."""
    if not resolved:
        return set()
    found: set[tuple[tuple, Channel, int]] = set()
    reached = (Notification.status.in_(NOTIFIED), Notification.user_id.is_not(None), Event.status == EventStatus.FIRING)
    incident_ids = {e.incident_id for e in resolved if e.incident_id}
    if incident_ids:
        rows = db.session.execute(
            db.select(Event.incident_id, Notification.channel, Notification.user_id)
            .join(Notification, Notification.event_id == Event.id)
            .where(Event.incident_id.in_(incident_ids), *reached)
        ).all()
        found |= {(("incident", iid), Channel(ch), uid) for (iid, ch, uid) in rows}
    keys = {notified_key(e) for e in resolved if not e.incident_id}
    if keys:
        rows = db.session.execute(
            db.select(Event.source, Event.customer_scope, Event.dedup_key, Notification.channel, Notification.user_id)
            .join(Notification, Notification.event_id == Event.id)
            .where(Event.dedup_key.in_({key for (_, _, key) in keys}), *reached)
        ).all()
        for source, scope, key, channel, user_id in rows:
            if (source, scope, key) in keys:
                found.add(((source, scope, key), Channel(channel), user_id))
    return found


def _load_people(
    *, ids: set[int], customer_ids: set[int], only: list[int] | None, now: datetime
) -> tuple[dict[int, Person], dict[tuple[int, Channel], tuple[int, datetime | None]]]:
    """Candidate users with their primary phone, and what the storm guard counts of each (per channel: how many
    messages in its window, the oldest), in one statement."""
    if only is not None:
        condition = User.id.in_(only)  # the "why not?" answer covers deactivated users too
    else:
        pool = User.role == Role.ADMIN
        if customer_ids:
            members = db.select(user_customer.c.user_id).where(user_customer.c.customer_id.in_(customer_ids))
            holders = db.select(NotificationPreference.user_id).where(
                NotificationPreference.customer_id.in_(customer_ids)
            )
            pool = pool | User.id.in_(members) | User.id.in_(holders)
        if ids:
            pool = pool | User.id.in_(ids)
        condition = pool & User.is_active.is_(True)
    storm = digest.storm_columns(User.id, now)
    statement = (
        db.select(
            User.id,
            User.email,
            User.name,
            User.role,
            User.is_active,
            User.timezone,
            PhoneNumber.number,
            PhoneNumber.opted_out,
            PhoneNumber.opted_out_at,
            PhoneNumber.opted_out_via,
            *storm.values(),
        )
        .outerjoin(PhoneNumber, (PhoneNumber.user_id == User.id) & PhoneNumber.is_primary.is_(True))
        .where(condition)
    )
    rows = db.session.execute(statement).all()
    recent = {}
    for row in rows:
        for channel in digest.HELD_CHANNELS:
            count, oldest = (row._mapping[storm[(channel, name)].key] for name in ("count", "oldest"))
            if count:
                recent[(row.id, channel)] = (count, oldest)
    people = {
        row.id: Person(
            id=row.id,
            email=row.email,
            name=row.name,
            role=Role(row.role),
            is_active=row.is_active,
            timezone=row.timezone or "UTC",
            phone=row.number,
            opted_out=bool(row.opted_out),
            opted_out_at=row.opted_out_at,
            opted_out_via=row.opted_out_via,
        )
        for row in rows
    }
    return people, recent


def _load_templates(events: list[Event], customer_ids: set[int]) -> dict[tuple[str, Channel, int | None], object]:
    types = {e.event_type for e in events}
    found = db.session.scalars(
        db.select(MessageTemplate).where(
            MessageTemplate.event_type.in_(types),
            MessageTemplate.customer_id.is_(None) | MessageTemplate.customer_id.in_(customer_ids),
        )
    ).all()
    return {(t.event_type, Channel(t.channel), t.customer_id): t for t in found}


# --- one user ------------------------------------------------------------------------------------------
