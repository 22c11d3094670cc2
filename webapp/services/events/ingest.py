"""Turning normalised webhook payloads into Events: deduplicated by the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from webapp.models import EVENT_DEDUP_KEY, Event, NotificationStatus, utcnow
from webapp.services import bulk
from webapp.services.events import escalation
from webapp.services.routing import decisions, outgoing
from webapp.sources.normalised import NormalisedEvent


@dataclass
class IngestResult:
    events: list[Event] = field(default_factory=list)  # newly stored
    duplicates: int = 0  # already stored: a redelivery
    notifications: list[decisions.Routed] = field(default_factory=list)


def ingest(items: list[NormalisedEvent], *, now: datetime | None = None) -> IngestResult:
    """Store new events, skip redeliveries, and route what is new. The caller commits, then enqueues."""
    now = now or utcnow()
    result = IngestResult()
    if not items:
        return result
    rows = [{**asdict(item), "created_at": now} for item in items]
    stored = bulk.insert_returning_objects(Event, rows, ignore_conflicts_on=EVENT_DEDUP_KEY)  # whole rows: no re-read
    result.events = sorted(stored, key=lambda event: event.id)
    result.duplicates = len(items) - len(result.events)
    result.notifications = decisions.route(result.events, now=now)
    result.notifications += outgoing.fan_out(result.events, now=now)
    escalation.arm_events(result.events, now=now)  # an alert nobody acknowledges climbs the levels
    return result


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
