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


def change_status(
    ticket: Ticket, status: TicketStatus, *, actor: User | None = None, now: datetime | None = None
) -> bool:
    """Move the ticket to `status` (timeline entry); False if it already was there."""
    if ticket.status == status:
        return False
    now = now or utcnow()
    before = ticket.status
    ticket.status = status
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        ticket.resolved_at = ticket.resolved_at or now
    else:
        ticket.resolved_at = None
    add_timeline(
        ticket, "status", f"Status {before} → {status}", actor=actor, data={"from": before, "to": status}, now=now
    )
    return True


def assign(ticket: Ticket, assignee: User | None, *, actor: User | None = None, now: datetime | None = None) -> bool:
    if ticket.assignee_id == (assignee.id if assignee else None):
        return False
    ticket.assignee = assignee
    text = f"Assigned to {assignee.name}" if assignee else "Unassigned"
    add_timeline(ticket, "assignment", text, actor=actor, data={"assignee_id": ticket.assignee_id}, now=now)
    return True


def set_priority(ticket: Ticket, priority: Priority, *, actor: User | None = None, now: datetime | None = None) -> bool:
    if ticket.priority == priority:
        return False
    before = ticket.priority
    ticket.priority = priority
    add_timeline(
        ticket,
        "priority",
        f"Priority {before} → {priority}",
        actor=actor,
        data={"from": before, "to": priority},
        now=now,
    )
    return True


def comment(ticket: Ticket, body: str, *, actor: User | None = None, now: datetime | None = None) -> TimelineEntry:
    return add_timeline(ticket, "comment", body, actor=actor, now=now)


def acknowledge(ticket: Ticket, *, by: User, via: str = "web", now: datetime | None = None) -> bool:
    """Record who acknowledged the ticket (once); False if it already was."""
    if ticket.acknowledged_at is not None:
        return False
    now = now or utcnow()
    ticket.acknowledged_at = now
    ticket.acknowledged_by = by
    add_timeline(ticket, "acknowledged", f"Acknowledged by {by.name} ({via})", actor=by, data={"via": via}, now=now)
    return True
