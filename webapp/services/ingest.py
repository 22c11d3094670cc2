"""Turning normalised webhook payloads into Events: deduplicated by the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webapp.extensions import db
from webapp.models import Event, EventStatus, Notification, Severity, utcnow
from webapp.services import routing


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


@dataclass
class IngestResult:
    events: list[Event] = field(default_factory=list)  # newly stored
    duplicates: int = 0  # already stored: a redelivery
    notifications: list[Notification] = field(default_factory=list)


BATCH = 500  # rows per statement: well under SQLite's limit on bound parameters


def _insert_ignoring_duplicates(rows: list[dict]) -> list[int]:
    """INSERT ... ON CONFLICT (source, dedup_key, status) DO NOTHING; the ids of the rows inserted."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    ids: list[int] = []
    for start in range(0, len(rows), BATCH):
        statement = (
            insert(Event)
            .values(rows[start : start + BATCH])
            .on_conflict_do_nothing(index_elements=["source", "dedup_key", "status"])
            .returning(Event.id)
        )
        ids.extend(db.session.scalars(statement))
    return ids


def ingest(items: list[NormalisedEvent], *, now: datetime | None = None) -> IngestResult:
    """Store new events, skip redeliveries, and route what is new. The caller commits, then enqueues."""
    now = now or utcnow()
    result = IngestResult()
    if not items:
        return result
    rows = [
        {
            "source": item.source,
            "dedup_key": item.dedup_key,
            "status": item.status,
            "severity": item.severity,
            "event_type": item.event_type,
            "title": item.title,
            "body": item.body,
            "labels": item.labels,
            "data": item.data,
            "customer_id": item.customer_id,
            "job_type": item.job_type,
            "starts_at": item.starts_at,
            "ends_at": item.ends_at,
            "created_at": now,
        }
        for item in items
    ]
    new_ids = _insert_ignoring_duplicates(rows)
    result.duplicates = len(items) - len(new_ids)
    if new_ids:
        for start in range(0, len(new_ids), BATCH):
            batch = new_ids[start : start + BATCH]
            result.events.extend(db.session.scalars(db.select(Event).where(Event.id.in_(batch)).order_by(Event.id)))
        result.notifications = routing.route(result.events, now=now)
    return result
