"""The inbox: a user's web-channel notifications, one item per incident (its newest notification), and
marking them read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, func, or_, update
from sqlalchemy.orm import aliased, selectinload

from webapp.extensions import db
from webapp.models import Channel, Event, Incident, Notification, NotificationStatus, utcnow
from webapp.services.people import preferences

# A web notification reaches the inbox when delivery marks it sent; suppressed or deferred ones do not.
SHOWN = (NotificationStatus.SENT, NotificationStatus.DELIVERED)


def _mine(user_id: int, notification=Notification):
    return and_(
        notification.user_id == user_id,
        notification.channel == Channel.WEB,
        notification.status.in_(SHOWN),
    )


def _incident_notifications(user_id: int, incident_id, *, newer_than=None, unread: bool = False):
    """The ids of the user's shown web notifications about the incident `incident_id` (a column or a value);
    `newer_than`: only those after that notification id; `unread`: only unread ones."""
    other, other_event = aliased(Notification), aliased(Event)
    query = (
        db.select(other.id)
        .join(other_event, other_event.id == other.event_id)
        .where(_mine(user_id, other), other_event.incident_id == incident_id)
    )
    if newer_than is not None:
        query = query.where(other.id > newer_than)
    if unread:
        query = query.where(other.read_at.is_(None))
    return query


def inbox_items(user_id: int, *, unread_only: bool = False):
    """The inbox's rows: each notification about no incident, and for each incident only its newest one (so an
    incident is one item, showing its latest news); `unread_only`: the items with something unread."""
    newer = _incident_notifications(user_id, Event.incident_id, newer_than=Notification.id)
    query = (
        db.select(Notification)
        .options(selectinload(Notification.event))
        .outerjoin(Event, Event.id == Notification.event_id)
        .where(_mine(user_id), or_(Event.incident_id.is_(None), ~exists(newer)))
    )
    if unread_only:
        unread = _incident_notifications(user_id, Event.incident_id, unread=True)
        query = query.where(or_(Notification.read_at.is_(None), and_(Event.incident_id.is_not(None), exists(unread))))
    return query


def incidents_of(notifications: list[Notification]) -> dict[int, Incident]:
    """The incidents of these notifications' events, by id (one statement)."""
    ids = {n.event.incident_id for n in notifications if n.event is not None and n.event.incident_id}
    if not ids:
        return {}
    return {i.id: i for i in db.session.scalars(db.select(Incident).where(Incident.id.in_(ids)))}


def unread_count(user_id: int) -> int:
    """Unread inbox items: unread notifications about no incident, and incidents with something unread."""
    return unread_and_zone(user_id)[0]


def unread_and_zone(user_id: int) -> tuple[int, str | None]:
    """What every page's top bar needs of its person, in one statement: the unread count (above) and the zone
    of their preference for all customers (preferences.zone_setting; None without one)."""
    counts = db.session.execute(
        db.select(
            func.count().filter(Event.incident_id.is_(None)),
            func.count(func.distinct(Event.incident_id)),
            preferences.zone_setting(user_id),
        )
        .select_from(Notification)
        .outerjoin(Event, Event.id == Notification.event_id)
        .where(_mine(user_id), Notification.read_at.is_(None))
    ).one()
    return int(counts[0] or 0) + int(counts[1] or 0), counts[2]


def mark_read(user_id: int, *, notification_id: int | None = None, now: datetime | None = None) -> int:
    """Mark one inbox item (a notification, and with it every other about the same incident) or, without an id,
    every unread web notification of `user_id` read. Returns how many notifications."""
    statement = (
        update(Notification)
        .where(_mine(user_id), Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if notification_id is not None:
        incident_id = db.session.scalar(
            db.select(Event.incident_id)
            .join(Notification, Notification.event_id == Event.id)
            .where(Notification.id == notification_id)
        )
        if incident_id is None:
            statement = statement.where(Notification.id == notification_id)
        else:
            statement = statement.where(Notification.id.in_(_incident_notifications(user_id, incident_id)))
    return db.session.execute(statement).rowcount
