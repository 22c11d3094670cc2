"""The inbox: a user's web-channel notifications, and marking them read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, utcnow

# A web notification reaches the inbox when delivery marks it sent; suppressed or deferred ones do not.
SHOWN = (NotificationStatus.SENT, NotificationStatus.DELIVERED)


def mark_read(user_id: int, *, notification_id: int | None = None, now: datetime | None = None) -> int:
    """Mark one (or, without an id, every) unread web notification of `user_id` read. Returns how many."""
    statement = (
        update(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.channel == Channel.WEB,
            Notification.read_at.is_(None),
            Notification.status.in_(SHOWN),
        )
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if notification_id is not None:
        statement = statement.where(Notification.id == notification_id)
    return db.session.execute(statement).rowcount
