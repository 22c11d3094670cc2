"""Acknowledging and resolving, from every path with one effect: the incident page and console, the inbox,
the dashboard, the API, an SMS `ACK <code>`, Slack's Acknowledge button, the linked ticket (acknowledged or
resolved), and the sender's own webhook. Each path calls one of these functions; the incident's own change
(escalation stopped, waiting pages suppressed, those reached told) is services.events.incidents, and this layer
keeps the incident and its linked ticket in step.

ACK codes need no lookup table: an incident's code is its id ("ACK 42"), a ticket's is its key
("ACK OPS-12").
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    EventStatus,
    Incident,
    IncidentState,
    Notification,
    NotificationStatus,
    Role,
    Ticket,
    TicketStatus,
    User,
    utcnow,
)
from webapp.services import audit
from webapp.services.events import incidents
from webapp.services.events.incidents import ACK_SOURCE, RESOLVE_SOURCE
from webapp.services.tickets import tickets

__all__ = ["ACK_SOURCE", "RESOLVE_SOURCE"]

_TICKET_CODE = re.compile(r"^OPS-(\d{1,12})$")
_INCIDENT_CODE = re.compile(r"^#?(\d{1,12})$")
RESOLVED_TICKET = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class AckResult(NamedTuple):
    acknowledged: bool  # False: it already was (or is over)
    informed: list[int]  # notices to those already paged (queued by the outbox at commit)


def code_for(event: Event) -> str | None:
    """The code an SMS about `event` carries, None when there is nothing left to acknowledge."""
    if event.source in (ACK_SOURCE, RESOLVE_SOURCE) or event.status != EventStatus.FIRING:
        return None
    if event.incident_id:
        return str(event.incident_id)
    return f"OPS-{event.ticket_id}" if event.ticket_id else None


def parse_code(code: str) -> tuple[str, int] | None:
    """("ticket", id) or ("incident", id) for a code, None if it cannot be one."""
    code = code.strip().upper()
    if match := _TICKET_CODE.match(code):
        return "ticket", int(match[1])
    if match := _INCIDENT_CODE.match(code):
        return "incident", int(match[1])
    return None


def was_paged(user: User, incident: Incident) -> bool:
    """May `user` act on this incident by SMS: an admin, or someone notified about it."""
    if user.role == Role.ADMIN:
        return True
    return (
        db.session.scalar(
            db.select(Notification.id)
            .where(Notification.event_id.in_(incidents.event_ids(incident)), Notification.user_id == user.id)
            .limit(1)
        )
        is not None
    )


def acknowledge(incident: Incident, *, by: User | None, via: str, now: datetime | None = None) -> AckResult:
    """A person acknowledges the incident (and so its open ticket). `by` None: someone OpsRelay does not know
    (a Slack user matching no account), named in `via`; the ticket then stays as it is. Flushes; the caller
    commits."""
    now = now or utcnow()
    informed = incidents.mark_acknowledged(incident, by=by, via=via, now=now)
    if informed is None:
        return AckResult(False, [])
    ticket = db.session.get(Ticket, incident.ticket_id) if incident.ticket_id and by is not None else None
    if ticket is not None and ticket.status not in RESOLVED_TICKET:
        tickets.acknowledge(ticket, by=by, via=f"incident #{incident.id}, {via}", now=now)
    return AckResult(True, informed)


def resolve(incident: Incident, *, by: User, via: str, now: datetime | None = None) -> bool:
    """A person resolves the incident: the all-clear goes out and its ticket is resolved. Flushes."""
    now = now or utcnow()
    if not incidents.mark_resolved(incident, by=by, via=via, now=now):
        return False
    ticket = db.session.get(Ticket, incident.ticket_id) if incident.ticket_id else None
    if ticket is not None and ticket.status not in RESOLVED_TICKET:
        tickets.change_status(ticket, TicketStatus.RESOLVED, actor=by, now=now)
    return True


def acknowledge_ticket(ticket: Ticket, *, by: User, via: str, now: datetime | None = None) -> AckResult:
    """tickets.acknowledge, and the same for the incidents the ticket was opened for. Flushes."""
    now = now or utcnow()
    if not tickets.acknowledge(ticket, by=by, via=via, now=now):
        return AckResult(False, [])
    audit.record(actor=by, action="ticket.ack", target=ticket, summary=f"{ticket.key} acknowledged via {via}")
    informed = _stop_ticket_events(ticket, by=by, now=now)
    for incident in _linked(ticket, IncidentState.TRIGGERED):
        informed += incidents.mark_acknowledged(incident, by=by, via=f"ticket {ticket.key}, {via}", now=now) or []
    return AckResult(True, informed)


def change_ticket_status(
    ticket: Ticket, status: TicketStatus, *, actor: User | None, via: str, now: datetime | None = None
) -> bool:
    """tickets.change_status; a ticket resolved or closed resolves the incidents it was opened for. Flushes."""
    now = now or utcnow()
    if not tickets.change_status(ticket, status, actor=actor, now=now):
        return False
    if status in RESOLVED_TICKET:
        _stop_ticket_events(ticket, by=actor, now=now)
        for incident in _linked(ticket, IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED):
            incidents.mark_resolved(incident, by=actor, via=f"ticket {ticket.key}, {via}", now=now)
    return True


def _linked(ticket: Ticket, *states: IncidentState) -> list[Incident]:
    return list(
        db.session.scalars(
            db.select(Incident)
            .where(Incident.ticket_id == ticket.id, Incident.state.in_([s.value for s in states]))
            .order_by(Incident.id)
        )
    )


def _stop_ticket_events(ticket: Ticket, *, by: User | None, now: datetime) -> list[int]:
    """Waiting SLA and escalation pages about the ticket itself end suppressed; those they reached are told."""
    who = by.name if by else "someone"
    paged = db.select(Event.id).where(
        Event.ticket_id == ticket.id, Event.status == EventStatus.FIRING, Event.incident_id.is_(None)
    )
    db.session.execute(
        sa.update(Notification)
        .where(
            Notification.event_id.in_(paged),
            Notification.status.in_(incidents.STOPPABLE),
            Notification.channel != Channel.WEBHOOK,
        )
        .values(status=NotificationStatus.SUPPRESSED, reason=f"{ticket.key} acknowledged by {who}", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if by is None or db.session.scalar(db.select(paged.exists())) is False:
        return []
    text = f"ACK: {who} acknowledged {ticket.key} {ticket.title}."
    notice = Event(
        source=ACK_SOURCE,
        dedup_key=f"ticket-{ticket.id}:acknowledged:{now.isoformat()}",
        status=EventStatus.ACKNOWLEDGED,
        event_type="ticket_updated",
        severity=ticket.priority.event_severity,
        title=f"Acknowledged: {ticket.key} {ticket.title}"[:300],
        body=text,
        customer_id=ticket.customer_id,
        ticket_id=ticket.id,
        created_at=now,
    )
    db.session.add(notice)
    db.session.flush()
    return incidents.tell(paged, notice, text=text, skip_user=by, now=now)
