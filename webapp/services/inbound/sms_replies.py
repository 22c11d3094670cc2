"""Inbound SMS: STOP/START/HELP keywords (opt-out per number), ACK <code>, and a help reply otherwise."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import update
from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import Event, Incident, IncidentState, Notification, PhoneNumber, Role, Ticket, User, utcnow
from webapp.services import audit
from webapp.services.inbound import acks
from webapp.validation import mask_phone

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}

HELP_TEXT = (
    "OpsRelay alerts. Reply ACK <code> to acknowledge an alert (the code is at the end of each alert), "
    "STOP to stop SMS, START to receive them again."
)


class Reply(NamedTuple):
    text: str
    informed: list[int] = []  # notifications to enqueue after the commit (others told of an ACK)


def opt_out(number: str, *, via: str, now: datetime | None = None) -> int:
    """Mark `number` opted out (every user's row for it: one record per number); how many rows changed."""
    now = now or utcnow()
    return db.session.execute(
        update(PhoneNumber)
        .where(PhoneNumber.number == number, PhoneNumber.opted_out.is_(False))
        .values(opted_out=True, opted_out_at=now, opted_out_via=via[:60])
        .execution_options(synchronize_session=False)
    ).rowcount


def opt_in(number: str) -> int:
    return db.session.execute(
        update(PhoneNumber)
        .where(PhoneNumber.number == number, PhoneNumber.opted_out.is_(True))
        .values(opted_out=False, opted_out_at=None, opted_out_via=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def _owners(number: str) -> list[User]:
    return list(
        db.session.scalars(
            db.select(User)
            .join(PhoneNumber, PhoneNumber.user_id == User.id)
            .where(PhoneNumber.number == number, User.is_active.is_(True))
            .options(selectinload(User.customers))
            .order_by(User.id)
        )
    )


def handle(number: str, text: str, *, now: datetime | None = None) -> Reply:
    """What an inbound SMS from `number` does, and the reply. Flushes; the caller commits."""
    now = now or utcnow()
    words = text.strip().split()
    keyword = words[0].upper() if words else ""
    if keyword in STOP_WORDS:
        changed = opt_out(number, via=f"SMS {keyword}", now=now)
        for user in _owners(number) if changed else []:
            audit.record(
                actor=user, action="phone.opt_out", target=user, summary=f"SMS {keyword} from {mask_phone(number)}"
            )
        return Reply("You are unsubscribed from OpsRelay SMS. Reply START to receive them again.")
    if keyword in START_WORDS:
        if opt_in(number):
            for user in _owners(number):
                audit.record(actor=user, action="phone.opt_in", target=user, summary=f"SMS {keyword}")
        return Reply("You will receive OpsRelay SMS again. Reply STOP to unsubscribe.")
    if keyword in HELP_WORDS:
        return Reply(HELP_TEXT)
    if keyword == "ACK":
        return _acknowledge(number, words[1] if len(words) > 1 else "", now=now)
    return Reply("Unknown command. " + HELP_TEXT)


def _acknowledge(number: str, code: str, *, now: datetime) -> Reply:
    parsed = acks.parse_code(code) if code else None
    if parsed is None:
        return Reply("Send ACK followed by the code at the end of the alert, e.g. ACK 42 or ACK OPS-12.")
    owners = _owners(number)
    if not owners:
        return Reply("This number belongs to no OpsRelay user.")
    kind, target_id = parsed
    label = code.strip().upper().removeprefix("#")
    if kind == "ticket":
        ticket = db.session.get(Ticket, target_id)
        event_ids = db.select(Event.id).where(Event.ticket_id == target_id)
        user = next((u for u in owners if ticket is not None and _may_ack_ticket(u, ticket, event_ids)), None)
        if ticket is None or user is None:
            return Reply(f"No alert or ticket {label} that you were paged about.")
        result = acks.acknowledge_ticket(ticket, by=user, via="SMS", now=now)
        if not result.acknowledged:
            by = ticket.acknowledged_by.name if ticket.acknowledged_by else "someone"
            return Reply(f"{ticket.key} was already acknowledged by {by}.")
        return Reply(f"Acknowledged {ticket.key}: {ticket.title}"[:300], result.informed)
    incident = db.session.get(Incident, target_id)
    user = next((u for u in owners if incident is not None and acks.was_paged(u, incident)), None)
    if incident is None or user is None:
        return Reply(f"No alert or ticket {label} that you were paged about.")
    result = acks.acknowledge(incident, by=user, via="SMS", now=now)
    if not result.acknowledged:
        if incident.state == IncidentState.RESOLVED:
            return Reply(f"#{incident.id} {incident.title} is already resolved."[:300])
        by = incident.acknowledged_by.name if incident.acknowledged_by else incident.acknowledged_via or "someone"
        return Reply(f"#{incident.id} was already acknowledged by {by}."[:300])
    return Reply(f"Acknowledged #{incident.id}: {incident.title}"[:300], result.informed)


def _may_ack_ticket(user: User, ticket: Ticket, event_ids) -> bool:
    if ticket.assignee_id == user.id or user.role == Role.ADMIN:
        return True
    return (
        db.session.scalar(
            db.select(Notification.id)
            .where(Notification.event_id.in_(event_ids), Notification.user_id == user.id)
            .limit(1)
        )
        is not None
    )
