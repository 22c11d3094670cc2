"""Turning normalised webhook payloads into Events: deduplicated by the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from webapp.models import EVENT_DEDUP_KEY, Event, Incident, NotificationStatus, dedup_identity, utcnow
from webapp.services import bulk
from webapp.services.events import escalation, incidents
from webapp.services.routing import decisions, outgoing
from webapp.sources.normalised import NormalisedEvent


@dataclass
class IngestResult:
    events: list[Event] = field(default_factory=list)  # newly stored
    duplicates: int = 0  # already stored: a redelivery
    notifications: list[decisions.Routed] = field(default_factory=list)
    opened: list[Incident] = field(default_factory=list)  # incidents triggered by these events


def ingest(items: list[NormalisedEvent], *, now: datetime | None = None) -> IngestResult:
    """Store new events, skip redeliveries, join each to its incident, and route what is news: a first firing
    pages, a resolution sends the all-clear, a resend or a sender's update pages nobody. The caller commits."""
    now = now or utcnow()
    result = IngestResult()
    if not items:
        return result
    rows = [{**_columns(item), "created_at": now} for item in items]
    stored = bulk.insert_returning_objects(Event, rows, ignore_conflicts_on=EVENT_DEDUP_KEY)  # whole rows: no re-read
    result.events = sorted(stored, key=lambda event: event.id)
    result.duplicates = len(items) - len(result.events)
    new = {dedup_identity(e) for e in result.events}
    duplicates = [i for i in items if dedup_identity(i) not in new]
    attached = incidents.attach(result.events, items, duplicates, now=now)
    result.opened = attached.opened
    result.notifications = decisions.route(attached.route, now=now)
    result.notifications += outgoing.fan_out(attached.announce, now=now)
    escalation.arm_incidents(attached.opened, now=now)  # an incident nobody acknowledges climbs the levels
    return result


def _columns(item: NormalisedEvent) -> dict:
    columns = asdict(item)
    del columns["incident_key"]  # the incident's identity, not a column of the event
    return columns


def receive(
    items: list[NormalisedEvent],
    *,
    follow_up: Callable[[IngestResult], dict] | None = None,
    now: datetime | None = None,
) -> dict:
    """What a webhook or the events API does with parsed items: ingest them, run the source's `follow_up`
    (tickets, timeline entries) in the same transaction, and return the answer for the sender (read now,
    before the caller's commit expires the rows). Flushes, never commits."""
    result = ingest(items, now=now)
    more = follow_up(result) if follow_up is not None else {}
    decisions = Counter(
        "queued" if n.status == NotificationStatus.PENDING else str(n.status) for n in result.notifications
    )
    return {
        "status": "accepted",
        "new_events": len(result.events),
        "duplicates": result.duplicates,
        "event_ids": [event.id for event in result.events],
        "notifications": dict(decisions),
        **(more or {}),
    }
