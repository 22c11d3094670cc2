"""Turning normalised webhook payloads into Events: deduplicated by the database, then routed.

Two ways in. A sender's request (`accept`: the webhooks, the events API) only stores what it received --
one INSERT, deduplicated by the database -- and asks the outbox for one routing job; the request commits and
answers at the cost of one durable write, however many people the events will page. The job (`route_stored`)
claims the events (a conditional UPDATE of `routed_at`: two runs route once), joins them to their incidents,
routes, fans out to outgoing webhooks and arms escalation. If the queue was down at the commit, the events
stay unrouted (`routed_at` NULL) and the recovery sweep hands them to the job again (`unrouted`).

OpsRelay's own events (heartbeats, SLA warnings, budgets) are made inside jobs already: `ingest` stores and
routes them in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

import sqlalchemy as sa

from webapp import outbox
from webapp.extensions import db
from webapp.models import EVENT_DEDUP_KEY, Event, Incident, dedup_identity, utcnow
from webapp.services import bulk
from webapp.services.events import escalation, incidents
from webapp.services.routing import decisions, outgoing
from webapp.sources.normalised import NormalisedEvent

UNROUTED_GRACE = timedelta(seconds=30)  # an unrouted event this old never reached the routing job
ROUTE_BATCH = 500  # events per routing job the recovery sweep hands over
BACKLOG = 200  # unrouted events a routing job takes along: in a storm one job routes the backlog at once


@dataclass
class IngestResult:
    events: list[Event] = field(default_factory=list)  # newly stored
    duplicates: int = 0  # already stored: a redelivery
    notifications: list[decisions.Routed] = field(default_factory=list)
    opened: list[Incident] = field(default_factory=list)  # incidents triggered by these events
    follow_up: dict | None = None  # the source's follow-up for these events (services.inbound.follow_ups)


def ingest(items: list[NormalisedEvent], *, now: datetime | None = None) -> IngestResult:
    """Store new events, skip redeliveries, join each to its incident, and route what is news: a first firing
    pages, a resolution sends the all-clear, a resend or a sender's update pages nobody. The caller commits."""
    now = now or utcnow()
    if not items:
        return IngestResult()
    rows = [{**_columns(item), "created_at": now, "routed_at": now} for item in items]
    stored = bulk.insert_returning_objects(Event, rows, ignore_conflicts_on=EVENT_DEDUP_KEY)  # whole rows: no re-read
    new = {dedup_identity(e) for e in stored}
    incidents.count_resends([i for i in items if dedup_identity(i) not in new], now=now)
    result = _route(sorted(stored, key=lambda event: event.id), now=now)
    result.duplicates = len(items) - len(stored)
    return result


def accept(items: list[NormalisedEvent], *, follow_up: dict | None = None, now: datetime | None = None) -> dict:
    """What a webhook or the events API does with parsed items: store the new ones unrouted (one INSERT), count
    the redeliveries of open incidents (one UPDATE, only if there are any), and ask the outbox for one routing
    job, which runs the source's `follow_up` too. Returns the answer for the sender. Flushes, never commits.

    Who is paged cannot be known yet: the answer says the routing is queued; the routing preview shows the
    decisions before they happen, the event's notifications after."""
    now = now or utcnow()
    stored: list[sa.Row] = []
    if items:
        rows = [{**_columns(item), "created_at": now, "routed_at": None, "follow_up": follow_up} for item in items]
        stored = bulk.insert_returning(
            Event,
            rows,
            Event.id,
            Event.source,
            Event.customer_scope,
            Event.dedup_key,
            Event.status,
            ignore_conflicts_on=EVENT_DEDUP_KEY,
        )
    ids = sorted(row.id for row in stored)
    if len(stored) < len(items):
        new = {(r.source, r.customer_scope, r.dedup_key, str(r.status)) for r in stored}
        incidents.count_resends([i for i in items if dedup_identity(i) not in new], now=now)
    if ids:
        outbox.route(ids)
    return {
        "status": "accepted",
        "new_events": len(ids),
        "duplicates": len(items) - len(ids),
        "event_ids": ids,
        "routing": "queued" if ids else "none",
    }


def route_stored(event_ids: Iterable[int], *, now: datetime | None = None) -> list[IngestResult]:
    """The routing job's work: claim those of these events nobody routed yet, with the backlog (one
    conditional UPDATE, so two runs route once), then attach, route, fan out and arm them as `ingest` does.
    One result per follow-up and wave (a request's events share one). Flushes, never commits: the claim and
    the routing commit together."""
    now = now or utcnow()
    ids = sorted(set(event_ids))  # none: the job that follows a whole backlog takes the next one
    claimed = db.session.scalars(
        sa.update(Event)
        .where(Event.id.in_(_claimable(ids)), Event.routed_at.is_(None))
        .values(routed_at=now)
        .returning(Event)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).all()
    groups: dict[str, list[Event]] = {}
    for event in sorted(claimed, key=lambda e: e.id):
        groups.setdefault(json.dumps(event.follow_up, sort_keys=True), []).append(event)
    results = []
    for group in groups.values():
        for events in _waves(group):
            result = _route(events, now=now)
            result.follow_up = events[0].follow_up
            results.append(result)
    return results


def _waves(events: list[Event]) -> list[list[Event]]:
    """Consecutive runs of `events` (in id order) in which no incident appears twice, routed one after the
    other: a backlog may hold an alert's resolution and its next firing, and each must meet the incident
    as the one before it left it."""
    waves: list[list[Event]] = [[]]
    seen: set[tuple] = set()
    for event in events:
        identity = (event.source, event.customer_id, event.incident_key)
        if event.incident_key is not None and identity in seen:
            waves.append([])
            seen = set()
        waves[-1].append(event)
        seen.add(identity)
    return waves


def _claimable(ids: list[int]) -> sa.Select:
    """The unrouted events among `ids`, and up to BACKLOG more waiting for their own jobs (oldest first): in a
    storm the first job routes the backlog in one transaction -- batched reads and writes -- and the later
    jobs find their events done. On PostgreSQL rows another job is routing are skipped, not waited for (and
    two jobs never lock overlapping sets in different orders)."""
    backlog = sa.select(Event.id).where(Event.routed_at.is_(None)).order_by(Event.id).limit(BACKLOG)
    return (
        sa.select(Event.id)
        .where(Event.routed_at.is_(None), sa.or_(Event.id.in_(ids), Event.id.in_(backlog.scalar_subquery())))
        .order_by(Event.id)
        .with_for_update(skip_locked=True)
    )


def unrouted(*, now: datetime | None = None, after_outage: bool = False) -> list[int]:
    """Events whose routing job the queue never got (or lost): stored more than UNROUTED_GRACE ago (without
    grace after an outage) and still unrouted. The recovery sweep hands them over again."""
    now = now or utcnow()
    grace = timedelta(0) if after_outage else UNROUTED_GRACE
    return list(
        db.session.scalars(
            db.select(Event.id).where(Event.routed_at.is_(None), Event.created_at <= now - grace).order_by(Event.id)
        )
    )


def _route(events: list[Event], *, now: datetime) -> IngestResult:
    """Join new events (in id order) to their incidents and route what is news."""
    result = IngestResult(events=events)
    attached = incidents.attach(events, [_item(e) for e in events], now=now)
    result.opened = attached.opened
    result.notifications = decisions.route(attached.route, now=now)
    result.notifications += outgoing.fan_out(attached.announce, now=now)
    escalation.arm_incidents(attached.opened, now=now)  # an incident nobody acknowledges climbs the levels
    return result


_ITEM_FIELDS = [f.name for f in fields(NormalisedEvent)]


def _item(event: Event) -> NormalisedEvent:
    """The stored event as its sender's parser told it (the incident's identity included)."""
    return NormalisedEvent(**{name: getattr(event, name) for name in _ITEM_FIELDS})


def _columns(item: NormalisedEvent) -> dict:
    """The event's columns (a shallow copy: dataclasses.asdict deep-copies labels and data, on every request)."""
    return {name: getattr(item, name) for name in _ITEM_FIELDS}


def receive(items: list[NormalisedEvent], *, now: datetime | None = None) -> dict:
    """Ingest and route OpsRelay's own items at once (a heartbeat's check-in): the new events' ids."""
    return {"event_ids": [event.id for event in ingest(items, now=now).events]}
