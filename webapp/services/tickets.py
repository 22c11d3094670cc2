"""Tickets: creation and their timeline. (The SLA engine adds deadlines and ticket events here.)"""

from __future__ import annotations

from datetime import datetime

from webapp.extensions import db
from webapp.models import Customer, Priority, Ticket, TicketStatus, TimelineEntry, User, utcnow


def create(
    *,
    customer: Customer,
    title: str,
    description: str = "",
    priority: Priority = Priority.NORMAL,
    assignee: User | None = None,
    actor: User | None = None,
    source: str | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Add an open ticket and its first timeline entry; flush, never commit."""
    now = now or utcnow()
    ticket = Ticket(
        customer=customer,
        title=title,
        description=description,
        priority=priority,
        status=TicketStatus.OPEN,
        assignee=assignee,
        created_by_id=actor.id if actor else None,
        created_at=now,
        updated_at=now,
    )
    db.session.add(ticket)
    db.session.flush()
    origin = f" from {source}" if source else ""
    add_timeline(ticket, "status", f"Ticket created{origin}", actor=actor, data={"status": "open"}, now=now)
    return ticket


def add_timeline(
    ticket: Ticket,
    kind: str,
    body: str,
    *,
    actor: User | None = None,
    data: dict | None = None,
    now: datetime | None = None,
) -> TimelineEntry:
    """Record what happened on the ticket: comment, status, deadline, notification, pull_request."""
    entry = TimelineEntry(
        ticket=ticket,
        kind=kind,
        body=body,
        data=data or {},
        actor_id=actor.id if actor else None,
        created_at=now or utcnow(),
    )
    db.session.add(entry)
    return entry
