"""The routing dry run shared by POST /api/v1/routing/preview and the /routing/preview page.

Builds unsaved Event objects from a webhook body (or a copy of a stored event) and asks
`decisions.plan` who would hear about them, and the escalation policy which step would reach whom, and when, if
nobody acknowledges; nothing is added to the session, nothing is sent."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import Event, EventStatus, Incident, dedup_identity, open_key, user_customer
from webapp.services.routing import decisions, policies
from webapp.sources import PARSERS

COPIED = (
    "customer_id",
    "source",
    "event_type",
    "dedup_key",
    "status",
    "severity",
    "title",
    "body",
    "labels",
    "data",
    "job_type",
    "ticket_id",
    "incident_id",
    "starts_at",
    "ends_at",
)
PREVIEW_KEY = "preview"  # the dedup key of an event typed in by hand: never a redelivery


@dataclass
class Preview:
    at: datetime
    events: list[Event]
    duplicates: dict[int, int]  # id(event) -> id of the stored event it repeats
    decisions: list[decisions.Decision] = field(default_factory=list)
    # The customer's people whom routing would not even consider on any channel, each with why (not recorded).
    passed_over: list[decisions.Decision] = field(default_factory=list)
    # id(event) -> the escalation plan of the incident it would open: which step reaches whom, and when.
    escalation: dict[int, policies.Plan] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.decisions:
            counts[str(d.status)] = counts.get(str(d.status), 0) + 1
        return counts


def events_from_webhook(source: object, payload: object, customer_id: int | None) -> list[Event]:
    """Unsaved events of a webhook body as `source` would parse it; InvalidPayload naming 'source' or 'payload'."""
    if source not in PARSERS:
        known = ", ".join(sorted(PARSERS)) or "none"
        raise InvalidPayload("Unknown webhook source.", {"source": f"must be one of: {known}"})
    if not isinstance(payload, dict):
        raise InvalidPayload("'payload' must be the webhook body, a JSON object.", {"payload": "required object"})
    try:
        items = PARSERS[source](payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # InvalidPayload passes through as it is
        raise InvalidPayload(
            f"The payload is not a {source} webhook body.", {"payload": f"{type(exc).__name__}: {exc}"[:200]}
        ) from None
    columns = set(Event.__table__.c.keys())
    if customer_id is not None:
        items = [replace(item, customer_id=customer_id) for item in items]
    keys = {id(item): open_key(item.source, item.customer_id, item.identity()) for item in items if item.identity()}
    open_ids = (
        dict(
            db.session.execute(
                db.select(Incident.open_key, Incident.id).where(Incident.open_key.in_(set(keys.values())))
            ).all()
        )
        if keys
        else {}
    )
    events = []
    for item in items:
        fields = {key: getattr(item, key) for key in item.__dataclass_fields__ if key in columns}
        fields["incident_id"] = open_ids.get(keys.get(id(item)))  # the open incident it would join
        events.append(Event(**fields))
    return events


def copy_of(stored: Event) -> Event:
    """An unsaved twin of a stored event, to ask who it would reach if it came in now."""
    return Event(**{name: getattr(stored, name) for name in COPIED})


def duplicates(events: list[Event]) -> dict[int, int]:
    """Events already received (same source, dedup key and status), and firings of an incident already open:
    a redelivery or a resend notifies nobody."""
    keys = {dedup_identity(e) for e in events if e.dedup_key != PREVIEW_KEY}
    if not keys:
        return _resends(events)
    stored = {
        (source, scope, key, str(status)): event_id
        for event_id, source, scope, key, status in db.session.execute(
            db.select(Event.id, Event.source, Event.customer_scope, Event.dedup_key, Event.status).where(
                Event.dedup_key.in_({key for (_, _, key, _) in keys})
            )
        )
    }
    found = {id(e): stored[dedup_identity(e)] for e in events if dedup_identity(e) in stored}
    return found | _resends([e for e in events if id(e) not in found])


def _resends(events: list[Event]) -> dict[int, int]:
    """A firing of an alert whose incident is open pages nobody again: it repeats the event that opened it."""
    incident_ids = {e.incident_id for e in events if e.incident_id and e.status == EventStatus.FIRING}
    if not incident_ids:
        return {}
    first = dict(
        db.session.execute(
            db.select(Event.incident_id, db.func.min(Event.id))
            .where(Event.incident_id.in_(incident_ids), Event.status == EventStatus.FIRING)
            .group_by(Event.incident_id)
        ).all()
    )
    return {id(e): first[e.incident_id] for e in events if e.status == EventStatus.FIRING and e.incident_id in first}


def run(events: list[Event], *, now: datetime, check_duplicates: bool = True) -> Preview:
    """The decisions real routing would record for `events` at `now` (redeliveries of stored events excluded)."""
    repeats = duplicates(events) if check_duplicates else {}
    fresh = [e for e in events if id(e) not in repeats]
    planned = [d for d in decisions.plan(fresh, now=now) if d.record]
    return Preview(
        at=now,
        events=events,
        duplicates=repeats,
        decisions=planned,
        passed_over=_passed_over(fresh, planned, now),
        escalation=policies.plans_for(fresh, now=now),
    )


MAX_MEMBERS = 200


def _passed_over(events: list[Event], planned: list[decisions.Decision], now: datetime) -> list[decisions.Decision]:
    """For each event, the members of its customer with no decision at all, decided alone (the "why not?" answer)."""
    customer_ids = {e.customer_id for e in events if e.customer_id is not None}
    if not customer_ids:
        return []
    members: dict[int, list[int]] = {}
    for customer_id, user_id in db.session.execute(
        db.select(user_customer.c.customer_id, user_customer.c.user_id)
        .where(user_customer.c.customer_id.in_(customer_ids))
        .order_by(user_customer.c.user_id)
        .limit(MAX_MEMBERS * len(customer_ids))
    ):
        members.setdefault(customer_id, []).append(user_id)
    heard = {(id(d.event), d.person.id) for d in planned}
    passed_over = []
    for event in events:
        missing = [uid for uid in members.get(event.customer_id, []) if (id(event), uid) not in heard]
        if missing:
            passed_over += decisions.plan([event], now=now, only_users=missing)
    return passed_over


def when(decision: decisions.Decision, now: datetime) -> datetime | None:
    """When the notification would go out: its hold's end, now, or never (suppressed)."""
    return decision.deliver_after or (now if str(decision.status) in ("pending", "sent") else None)
