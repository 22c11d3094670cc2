"""Who hears about an event, on which channel, and when: every decision becomes a Notification row.

`plan(events)` decides and stores nothing (the dry run and "why not?" use it); `route(events)` writes the
same decisions in bulk. Both read a fixed number of statements whatever the number of users.

Who is a candidate: the active members of the event's customer, every active admin (admins see every
customer), users with a preference for that customer, and the assignee of the event's ticket; or, when
`audience` is given, exactly those users (membership not required) plus the assignee. For a resolved
event: those who were notified of the firing one (same source and dedup key), on the channels that
notified them. The order of the checks, and so the reason a row carries, is: deactivated, not a member,
not subscribed to the event type, job type filtered, channel disabled, below the channel's minimum
severity, no address or opted out; then the timing (quiet hours, aggregation, hourly limit: see digest.py).
Web rows are the in-app notification: `sent` at once, never held.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

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
    Severity,
    Ticket,
    User,
    user_customer,
    utcnow,
)
from webapp.services import bulk, digest, sms_text, templates
from webapp.services.preferences import CHANNEL_NAMES, USER_CHANNELS, Rules, pick

S = NotificationStatus
NOTIFIED = (S.PENDING, S.QUEUED, S.SENDING, S.SENT, S.DELIVERED, S.DEFERRED)


class Routed(NamedTuple):
    """A decision as stored: the Notification row's id and status."""

    id: int
    status: NotificationStatus


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


@dataclass
class Decision:
    """One (event, user, channel) decision; `record` False: explained but not stored (outside the role default)."""

    event: Event
    person: Person
    channel: Channel
    status: NotificationStatus
    reason: str | None = None
    recipient: str | None = None
    subject: str | None = None
    body: str = ""
    sms_encoding: str | None = None
    sms_segments: int | None = None
    deliver_after: datetime | None = None
    hold: str | None = None
    record: bool = True
    rules_source: str = ""

    def row(self, now: datetime) -> dict:
        return {
            "event_id": self.event.id,
            "user_id": self.person.id,
            "customer_id": self.event.customer_id,
            "channel": self.channel,
            "recipient": self.recipient,
            "subject": self.subject,
            "body": self.body,
            "status": self.status,
            "reason": self.reason[:300] if self.reason else None,
            "sms_encoding": self.sms_encoding,
            "sms_segments": self.sms_segments,
            "deliver_after": self.deliver_after,
            "hold": self.hold,
            "sent_at": now if self.status == S.SENT else None,
            "created_at": now,
            "updated_at": now,
        }


def route(events: list[Event], *, now: datetime | None = None, audience: list[int] | None = None) -> list[Routed]:
    """Decide and record every (user, channel) pair for these new events, in bulk; never commit.

    Pending rows go to `delivery.enqueue` after the caller commits; web rows are already sent."""
    now = now or utcnow()
    rows = [d.row(now) for d in plan(events, now=now, audience=audience) if d.record]
    if not rows:
        return []
    return [
        Routed(row.id, row.status)
        for row in bulk.insert_returning(Notification, rows, Notification.id, Notification.status)
    ]


def plan(
    events: list[Event],
    *,
    now: datetime | None = None,
    audience: list[int] | None = None,
    only_users: list[int] | None = None,
) -> list[Decision]:
    """Every decision for these events, stored nowhere. `only_users`: decide for these users alone under the
    normal rules, every channel included (the "why not?" answer)."""
    now = now or utcnow()
    if not events:
        return []
    ctx = _Context.load(events, now=now, audience=audience, only_users=only_users)
    decisions: list[Decision] = []
    for event in events:
        for person in ctx.candidates(event):
            decisions.extend(_decide_user(ctx, event, person, explain=only_users is not None))
    return decisions


class _Context:
    """Everything the decisions read, loaded with a fixed number of set-based statements."""

    @classmethod
    def load(cls, events, *, now, audience, only_users) -> _Context:
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
        self.people = _load_people(
            ids=set(only_users if only_users is not None else (audience or [])) | extra,
            customer_ids=self.customer_ids if audience is None and only_users is None else set(),
            only=only_users,
        )
        ids = list(self.people)
        self.members: set[tuple[int, int]] = set()
        self.customer_names: dict[int, str] = {}
        if self.customer_ids:
            self.members = set(
                db.session.execute(
                    db.select(user_customer.c.user_id, user_customer.c.customer_id).where(
                        user_customer.c.customer_id.in_(self.customer_ids)
                    )
                ).all()
            )
            self.customer_names = dict(
                db.session.execute(
                    db.select(Customer.id, Customer.name).where(Customer.id.in_(self.customer_ids))
                ).all()
            )
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
        self.timing = digest.Timing.load(ids, prefs=self.prefs.values(), now=now)
        return self

    def candidates(self, event: Event) -> list[Person]:
        if self.only_users is not None:
            return [self.people[i] for i in sorted(set(self.only_users)) if i in self.people]
        if event.status == EventStatus.RESOLVED:
            ids = {u for (key, _, u) in self.firing_notified if key == (event.source, event.dedup_key)}
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


def _firing_notified(resolved: list[Event]) -> set[tuple[tuple[str, str], Channel, int]]:
    """((source, dedup_key), channel, user id) of everyone notified of the firing side of these events."""
    if not resolved:
        return set()
    keys = {(e.source, e.dedup_key) for e in resolved}
    rows = db.session.execute(
        db.select(Event.source, Event.dedup_key, Notification.channel, Notification.user_id)
        .join(Notification, Notification.event_id == Event.id)
        .where(
            Event.status == EventStatus.FIRING,
            Event.dedup_key.in_({k for (_, k) in keys}),
            Notification.status.in_(NOTIFIED),
            Notification.user_id.is_not(None),
        )
    ).all()
    return {((src, key), Channel(ch), uid) for (src, key, ch, uid) in rows if (src, key) in keys}


def _load_people(*, ids: set[int], customer_ids: set[int], only: list[int] | None) -> dict[int, Person]:
    """Candidate users with their primary phone, in one statement."""
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
        )
        .outerjoin(PhoneNumber, (PhoneNumber.user_id == User.id) & PhoneNumber.is_primary.is_(True))
        .where(condition)
    )
    return {
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
        for row in db.session.execute(statement)
    }


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


def _decide_user(ctx: _Context, event: Event, person: Person, *, explain: bool) -> list[Decision]:
    rules = ctx.rules(person, event)
    resolved = event.status == EventStatus.RESOLVED
    role_channels = None if rules.explicit or resolved else rules.role_channels(event.event_type, event.severity)
    user_reason = _user_reason(ctx, event, person, rules)
    decisions = []
    for channel in USER_CHANNELS:
        base = Decision(event=event, person=person, channel=channel, status=S.SUPPRESSED, rules_source=rules.source)
        if resolved:
            if ((event.source, event.dedup_key), channel, person.id) not in ctx.firing_notified:
                if explain:
                    decisions.append(
                        replace(base, reason="was not notified when this alert fired on this channel", record=False)
                    )
                continue
        elif not rules.explicit and (role_channels is None or channel not in role_channels):
            if explain:
                decisions.append(replace(base, reason=_outside_role_default(rules, event, channel), record=False))
            continue
        reason = user_reason or _channel_reason(event, person, rules, channel, role_channels, resolved)
        if reason:
            decisions.append(replace(base, reason=reason))
            continue
        decisions.append(_deliverable(ctx, base, rules))
    return decisions


def _user_reason(ctx: _Context, event: Event, person: Person, rules: Rules) -> str | None:
    if not person.is_active:
        return "the user is deactivated"
    if event.customer_id is not None and not ctx.is_member(person, event):
        return f"not a member of customer {ctx.customer_names.get(event.customer_id, event.customer_id)}"
    if event.customer_id is None and person.role != Role.ADMIN and not ctx.is_member(person, event):
        return "not a member of a customer: events without a customer go to admins"
    if event.status == EventStatus.RESOLVED:
        return None if rules.notify_on_resolve else "chose not to be told when alerts resolve"
    if rules.explicit and rules.event_types and event.event_type not in rules.event_types:
        return f"not subscribed to {event.event_type} events ({rules.source})"
    if rules.job_types and event.job_type and event.job_type not in rules.job_types:
        allowed = ", ".join(sorted(rules.job_types))
        return f"job type {event.job_type} is filtered out: the job-type filter allows only {allowed}"
    return None


def _channel_reason(event, person, rules, channel, role_channels, resolved) -> str | None:
    name = CHANNEL_NAMES[channel]
    if rules.explicit and channel not in rules.channels:
        return f"{name} is disabled in {rules.source}"
    if not resolved:
        minimum = rules.min_severity[channel] if rules.explicit else role_channels[channel]
        if event.severity.rank < minimum.rank:
            return (
                f"below the minimum severity for {name}: the event is {event.severity}, {name} needs {minimum} or above"
            )
    if channel == Channel.EMAIL and not (rules.override_email or person.email):
        return "no email address: the user has none and the preference sets no override"
    if channel == Channel.SMS:
        if person.phone is None:
            return "no phone number: add one on the user's page"
        if person.opted_out:
            since = person.opted_out_at.strftime("%Y-%m-%d %H:%M UTC") if person.opted_out_at else "an unknown time"
            via = f" via {person.opted_out_via}" if person.opted_out_via else ""
            return f"opted out of SMS (number …{person.phone[-4:]}) since {since}{via}"
    return None


def _outside_role_default(rules: Rules, event: Event, channel: Channel) -> str:
    return (
        f"no {CHANNEL_NAMES[channel]} for a {event.severity} {event.event_type} event under {rules.source}; "
        "set a notification preference to change it"
    )


def _deliverable(ctx: _Context, base: Decision, rules: Rules) -> Decision:
    event, channel, person = base.event, base.channel, base.person
    recipient = {
        Channel.WEB: None,
        Channel.EMAIL: rules.override_email or person.email,
        Channel.SMS: person.phone,
    }[channel]
    subject, body, note = _render(ctx, event, channel)
    decision = replace(base, status=S.PENDING, recipient=recipient, subject=subject, body=body, reason=note)
    if channel == Channel.SMS:
        length = sms_text.measure(body)
        decision.sms_encoding, decision.sms_segments = length.encoding, length.segments
    if channel == Channel.WEB:
        decision.status = S.SENT  # the row itself is the in-app notification
        return decision
    hold = ctx.timing.hold(person.id, channel, event.customer_id, rules, critical=event.severity == Severity.CRITICAL)
    if hold is not None:
        decision.status, decision.hold, decision.deliver_after, decision.reason = (
            S.DEFERRED,
            hold.kind,
            hold.until,
            hold.reason,
        )
    return decision


def _render(ctx: _Context, event: Event, channel: Channel) -> tuple[str | None, str, str | None]:
    """(subject, body, note) for this event on this channel: its template, else plain text from the event."""
    key = (id(event), channel)
    if key not in ctx.rendered:
        ctx.rendered[key] = _render_uncached(ctx, event, channel)
    return ctx.rendered[key]


def _render_uncached(ctx: _Context, event: Event, channel: Channel) -> tuple[str | None, str, str | None]:
    template = None
    if event.status != EventStatus.RESOLVED:  # templates describe the firing event; a resolution is plain
        template = ctx.templates.get((event.event_type, channel, event.customer_id)) or ctx.templates.get(
            (event.event_type, channel, None)
        )
    note = None
    subject, body = None, None
    if template is not None:
        try:
            context = templates.event_context(event)
            body = templates.render_text(template.body_text, context)
            subject = templates.render_text(template.subject, context) if template.subject else None
        except templates.TemplateRenderError as exc:
            subject, body = None, None
            note = f"template {template.name!r} did not render ({exc}); the plain text was used"
    plain_subject, plain_body = plain_text(event)
    subject = (subject or plain_subject)[:300] if channel != Channel.SMS else None
    body = body or (plain_body if channel != Channel.SMS else f"{plain_subject}\n{event.body}".strip())
    if channel == Channel.SMS:
        body = sms_text.shorten(body, int(current_app.config.get("SMS_MAX_SEGMENTS", 3)))
    return subject, body, note


def plain_text(event: Event) -> tuple[str, str]:
    """(subject, body) made from the event itself, for a missing template."""
    state = "RESOLVED" if event.status == EventStatus.RESOLVED else str(event.severity).upper()
    subject = f"[{state}] {event.title}"
    details = [f"Severity: {event.severity}", f"Status: {event.status}", f"Source: {event.source}"]
    if event.job_type:
        details.append(f"Job type: {event.job_type}")
    return subject, "\n".join(part for part in (event.title, event.body, "\n".join(details)) if part)
