"""Turning normalised webhook payloads into Events: deduplicated by the database."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from webapp.models import Event, EventStatus, Severity, utcnow
from webapp.services import bulk
from webapp.services.events import escalation
from webapp.services.routing import decisions, outgoing

DEDUP_KEY = ("source", "dedup_key", "status")  # the unique constraint that makes a redelivery a no-op


@dataclass(frozen=True)
class NormalisedEvent:
    """What a webhook parser produces: source-independent, not yet stored."""

    source: str
    dedup_key: str
    status: EventStatus
    severity: Severity
    title: str
    body: str = ""
    event_type: str = "alert"
    labels: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    customer_id: int | None = None
    job_type: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    ticket_id: int | None = None


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
    stored = bulk.insert_returning_objects(Event, rows, ignore_conflicts_on=DEDUP_KEY)  # whole rows: no re-read
    result.events = sorted(stored, key=lambda event: event.id)
    result.duplicates = len(items) - len(result.events)
    result.notifications = decisions.route(result.events, now=now)
    result.notifications += outgoing.fan_out(result.events, now=now)
    escalation.arm_events(result.events, now=now)  # an alert nobody acknowledges climbs the levels
    return result
