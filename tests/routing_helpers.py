"""Shared helpers for the routing tests: events at a controlled time, preferences, the rows they made."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

from webapp.extensions import db
from webapp.models import Event, EventStatus, Notification, NotificationPreference, NotificationStatus, Severity
from webapp.services.events import ingest
from webapp.sources.normalised import NormalisedEvent

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # a Thursday, 10:00 UTC
_keys = itertools.count(1)


def item(
    *,
    event_type: str = "alert",
    severity: str = "critical",
    customer=None,
    title: str = "DiskFull",
    status: str = "firing",
    key: str | None = None,
    job_type: str | None = None,
    labels: dict | None = None,
    source: str = "test",
    incident_key: str | None = None,
) -> NormalisedEvent:
    return NormalisedEvent(
        source=source,
        dedup_key=key or f"k{next(_keys)}",
        status=EventStatus(status),
        severity=Severity(severity),
        title=title,
        body=f"{title} body",
        event_type=event_type,
        labels=labels or {},
        customer_id=customer.id if customer is not None else None,
        job_type=job_type,
        incident_key=incident_key,
    )


def fire(*, now: datetime = T0, **fields) -> Event:
    """Ingest one event at `now` (routing included) and commit, as a webhook would."""
    result = ingest.ingest([item(**fields)], now=now)
    db.session.commit()
    return result.events[0]


def decided(event_ids: list[int]) -> dict[str, int]:
    """What routing decided for these events, by status ("queued": waiting for its delivery job)."""
    statuses = db.session.scalars(db.select(Notification.status).where(Notification.event_id.in_(event_ids)))
    return dict(Counter("queued" if s == NotificationStatus.PENDING else str(s) for s in statuses))


def prefer(user, customer=None, **fields) -> NotificationPreference:
    pref = NotificationPreference(user_id=user.id, customer_id=customer.id if customer else None, **fields)
    db.session.add(pref)
    db.session.commit()
    return pref


def rows(event: Event | None = None) -> dict[tuple[int, str], Notification]:
    query = db.select(Notification).order_by(Notification.id)
    if event is not None:
        query = query.where(Notification.event_id == event.id)
    return {(n.user_id, str(n.channel)): n for n in db.session.scalars(query)}


def decisions(event: Event) -> dict[tuple[int, str], tuple[str, str | None]]:
    return {key: (str(n.status), n.reason) for key, n in rows(event).items()}
