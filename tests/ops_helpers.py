"""Helpers shared by the operations-page tests: rows made directly, statement counting."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Channel, Event, EventStatus, Notification, NotificationStatus, Severity, utcnow


def make_event(
    customer, *, title="DiskFull on db-1", event_type="alert", severity=Severity.CRITICAL, **fields
) -> Event:
    event = Event(
        customer_id=customer.id if customer else None,
        source="alertmanager",
        event_type=event_type,
        dedup_key=fields.pop("dedup_key", f"{title}-{utcnow().timestamp()}"),
        status=fields.pop("status", EventStatus.FIRING),
        severity=severity,
        title=title,
        **fields,
    )
    db.session.add(event)
    db.session.commit()
    return event


def make_notification(
    *, customer=None, user=None, event=None, channel=Channel.SMS, status=NotificationStatus.SENT, **fields
) -> Notification:
    notification = Notification(
        customer_id=customer.id if customer else None,
        user_id=user.id if user else None,
        event_id=event.id if event else None,
        channel=channel,
        recipient=fields.pop("recipient", "+14155550101" if channel == Channel.SMS else "ops@example.com"),
        body=fields.pop("body", "DiskFull on db-1"),
        status=status,
        **fields,
    )
    db.session.add(notification)
    db.session.commit()
    return notification


def bulk_notifications(customer, count: int, *, channel=Channel.SMS, status=NotificationStatus.SENT) -> None:
    now = utcnow()
    db.session.execute(
        sa.insert(Notification),
        [
            {
                "customer_id": customer.id,
                "channel": channel,
                "recipient": "+14155550101",
                "body": f"bulk {i}",
                "status": status,
                "created_at": now - timedelta(minutes=i),
                "updated_at": now,
            }
            for i in range(count)
        ],
    )
    db.session.commit()


@contextmanager
def count_statements():
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
