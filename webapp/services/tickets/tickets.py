"""Tickets: creation, changes and their timeline; deadlines from the SLA engine; ticket events routed.

Every function flushes, never commits. Notifications the ticket events create reach the queue through the
outbox when the caller commits.
"""

from __future__ import annotations

from datetime import datetime

from webapp.extensions import db
from webapp.models import Customer, Priority, Ticket, TicketStatus, TimelineEntry, User, utcnow
from webapp.services.tickets import sla


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
    sla.apply_deadlines(ticket, reason=f"SLA policy for {priority} priority", now=now, actor=actor)
    sla.ticket_event(
        ticket,
        "ticket_created",
        key=f"{ticket.key}:created",
        title=f"{ticket.key} created: {title}",
        body=description,
        now=now,
    )
    return ticket


def _updated(ticket: Ticket, what: str, *, now: datetime) -> None:
    """A ticket_updated event for this change (its own dedup key: a repeat of the same call is a no-op)."""
    sla.ticket_event(
        ticket,
        "ticket_updated",
        key=f"{ticket.key}:{what}:{now.isoformat()}",
        title=f"{ticket.key} {what}: {ticket.title}",
        now=now,
    )


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
    if status != TicketStatus.OPEN:
        ticket.next_escalation_at = None  # nothing left to escalate
    add_timeline(
        ticket, "status", f"Status {before} → {status}", actor=actor, data={"from": before, "to": status}, now=now
    )
    sla.on_status_change(ticket, before, status, now=now, actor=actor)
    _updated(ticket, f"status {before} → {status}", now=now)
    return True


def assign(ticket: Ticket, assignee: User | None, *, actor: User | None = None, now: datetime | None = None) -> bool:
    if ticket.assignee_id == (assignee.id if assignee else None):
        return False
    now = now or utcnow()
    ticket.assignee = assignee
    ticket.assignee_id = assignee.id if assignee else None
    text = f"Assigned to {assignee.name}" if assignee else "Unassigned"
    add_timeline(ticket, "assignment", text, actor=actor, data={"assignee_id": ticket.assignee_id}, now=now)
    _updated(ticket, text.lower(), now=now)
    return True


def set_priority(ticket: Ticket, priority: Priority, *, actor: User | None = None, now: datetime | None = None) -> bool:
    if ticket.priority == priority:
        return False
    now = now or utcnow()
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
    sla.apply_deadlines(ticket, reason=f"priority changed {before} → {priority}", now=now, actor=actor)
    _updated(ticket, f"priority {before} → {priority}", now=now)
    return True


def comment(ticket: Ticket, body: str, *, actor: User | None = None, now: datetime | None = None) -> TimelineEntry:
    now = now or utcnow()
    if actor is not None and ticket.first_responded_at is None:
        ticket.first_responded_at = now  # the first answer by a person meets the first-response target
    return add_timeline(ticket, "comment", body, actor=actor, now=now)


def acknowledge(ticket: Ticket, *, by: User, via: str = "web", now: datetime | None = None) -> bool:
    """Record who acknowledged the ticket (once); False if it already was."""
    if ticket.acknowledged_at is not None:
        return False
    now = now or utcnow()
    ticket.acknowledged_at = now
    ticket.acknowledged_by = by
    ticket.next_escalation_at = None  # escalation stops at once
    add_timeline(ticket, "acknowledged", f"Acknowledged by {by.name} ({via})", actor=by, data={"via": via}, now=now)
    return True
