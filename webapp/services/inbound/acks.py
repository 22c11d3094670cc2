"""Acknowledging an event or a ticket: stop paging about it and tell the others who took it.

ACK codes need no lookup table: an event's code is its id in base 36 ("ACK 2S"), a ticket's is its
key ("ACK OPS-12"); an event about a ticket carries the ticket's code.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import update

from webapp import outbox
from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    EventStatus,
    Notification,
    NotificationStatus,
    Role,
    Severity,
    Ticket,
    User,
    utcnow,
)
from webapp.services import audit, bulk
from webapp.services.tickets import tickets

S = NotificationStatus
ACK_SOURCE = "ack"  # the events that carry "X acknowledged Y" to the others paged
STOPPABLE = (S.PENDING, S.DEFERRED, S.QUEUED)
REACHED = (S.SENDING, S.SENT, S.DELIVERED)
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TICKET_CODE = re.compile(r"^OPS-(\d{1,12})$")
_EVENT_CODE = re.compile(r"^[0-9A-Z]{1,12}$")


class AckResult(NamedTuple):
    acknowledged: bool  # False: it already was
    suppressed: int  # notifications stopped
    informed: list[int]  # pending notifications telling the others (the caller commits, then enqueues)


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _DIGITS[rest] + digits
        if not number:
            return digits


def code_for(event: Event) -> str:
    """The short code an SMS about `event` carries."""
    return f"OPS-{event.ticket_id}" if event.ticket_id else _base36(event.id)


def parse_code(code: str) -> tuple[str, int] | None:
    """("ticket", id) or ("event", id) for a code, None if it cannot be one."""
    code = code.strip().upper()
    if match := _TICKET_CODE.match(code):
        return "ticket", int(match[1])
    if _EVENT_CODE.match(code):
        return "event", int(code, 36)
    return None


def was_paged(user: User, event_ids: list[int]) -> bool:
    """May `user` acknowledge these events: an admin, or someone notified about one of them."""
    if user.role == Role.ADMIN:
        return True
    if not event_ids:
        return False
    return (
        db.session.scalar(
            db.select(Notification.id)
            .where(Notification.event_id.in_(event_ids), Notification.user_id == user.id)
            .limit(1)
        )
        is not None
    )


def acknowledge_event(event: Event, *, by: User, via: str, now: datetime | None = None) -> AckResult:
    """Record who acknowledged `event`; stop its waiting notifications; tell the others paged. Flushes."""
    if event.acknowledged_at is not None:
        return AckResult(False, 0, [])
    now = now or utcnow()
    event.acknowledged_at = now
    event.acknowledged_by_id = by.id
    audit.record(actor=by, action="event.ack", target=event, summary=f"{event.title} acknowledged via {via}")
    return _stop_and_tell(
        [event.id],
        by=by,
        via=via,
        title=event.title,
        origin=event,
        dedup_key=f"event-{event.id}",
        ticket_id=event.ticket_id,
        now=now,
    )


def acknowledge_ticket(ticket: Ticket, *, by: User, via: str, now: datetime | None = None) -> AckResult:
    """tickets.acknowledge, and the same for every event about the ticket. Flushes."""
    now = now or utcnow()
    if not tickets.acknowledge(ticket, by=by, via=via, now=now):
        return AckResult(False, 0, [])
    event_ids = list(
        db.session.scalars(
            update(Event)
            .where(Event.ticket_id == ticket.id, Event.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by_id=by.id)
            .returning(Event.id)
            .execution_options(synchronize_session=False)
        )
    )
    audit.record(actor=by, action="ticket.ack", target=ticket, summary=f"{ticket.key} acknowledged via {via}")
    origin = db.session.scalars(db.select(Event).where(Event.id.in_(event_ids)).order_by(Event.id.desc())).first()
    return _stop_and_tell(
        event_ids,
        by=by,
        via=via,
        title=f"{ticket.key} {ticket.title}",
        origin=origin,
        dedup_key=f"ticket-{ticket.id}",
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        now=now,
    )


def _stop_and_tell(
    event_ids: list[int],
    *,
    by: User,
    via: str,
    title: str,
    origin: Event | None,
    dedup_key: str,
    ticket_id: int | None,
    now: datetime,
    customer_id: int | None = None,
) -> AckResult:
    if not event_ids:
        return AckResult(True, 0, [])
    suppressed = db.session.execute(
        update(Notification)
        .where(
            Notification.event_id.in_(event_ids),
            Notification.status.in_(STOPPABLE),
            Notification.channel != Channel.WEBHOOK,  # integrations still hear about the event
        )
        .values(status=S.SUPPRESSED, reason=f"acknowledged by {by.name}"[:300], next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    paged = db.session.execute(
        db.select(Notification.user_id, Notification.channel, Notification.recipient, Notification.customer_id)
        .where(
            Notification.event_id.in_(event_ids),
            Notification.status.in_(REACHED),
            Notification.channel.in_((Channel.SMS, Channel.EMAIL, Channel.WEB)),
            Notification.user_id.is_not(None),
            Notification.user_id != by.id,
        )
        .distinct()
    ).all()
    if not paged:
        return AckResult(True, suppressed, [])
    text = f"ACK: {by.name} acknowledged {title} ({via})."
    notice = Event(
        source=ACK_SOURCE,
        dedup_key=dedup_key,
        status=EventStatus.ACKNOWLEDGED,
        event_type=origin.event_type if origin else "alert",
        severity=origin.severity if origin else Severity.INFO,
        title=f"Acknowledged: {title}"[:300],
        body=text,
        customer_id=origin.customer_id if origin else customer_id,
        ticket_id=ticket_id,
        created_at=now,
    )
    db.session.add(notice)
    db.session.flush()
    seen: set[tuple] = set()
    rows = []
    for user_id, channel, recipient, row_customer_id in paged:
        if (user_id, channel) in seen:
            continue
        seen.add((user_id, channel))
        rows.append(
            {
                "event_id": notice.id,
                "user_id": user_id,
                "customer_id": row_customer_id,
                "channel": channel,
                "recipient": recipient,
                "subject": notice.title,
                "body": text,
                "status": S.PENDING,
                "created_at": now,
                "updated_at": now,
            }
        )
    informed = [row.id for row in bulk.insert_returning(Notification, rows, Notification.id)]
    outbox.deliver(informed)
    return AckResult(True, suppressed, informed)
