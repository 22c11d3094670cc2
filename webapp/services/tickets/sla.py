"""The SLA engine: deadlines from policies and calendars, the pause, and the sweep that warns and breaches.

Deadlines are counted from the ticket's creation in the policy's time (24/7 or the customer's business
hours): due = creation + resolution target + the business time the clock stood (pending, or resolved
before a reopening). Keeping the paused time, not the deadline, is what lets a policy change keep it.

The sweep marks each ticket once per deadline with a conditional UPDATE ... RETURNING on the partial
indexes ix_ticket_sla_warn / ix_ticket_sla_due: two sweeps at once never both win a row, and its cost
follows the due tickets, not the table. A deadline that moves clears the marks, so the new deadline
is warned and breached again; the events' dedup keys carry the deadline, so a repeat is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (
    EVENT_KINDS,
    BusinessCalendar,
    Customer,
    EventStatus,
    Holiday,
    Priority,
    SlaPolicy,
    Ticket,
    TicketStatus,
    TimelineEntry,
    User,
    utcnow,
)
from webapp.models.ticket import OPEN_FOR_SLA
from webapp.services import bulk
from webapp.services.events import ingest
from webapp.services.tickets import business_time
from webapp.services.tickets.business_time import Calendar
from webapp.sources.normalised import NormalisedEvent

RUNNING = (TicketStatus.OPEN,)


# --- policies and calendars ------------------------------------------------------------------


def policy_for(customer_id: int, priority: Priority) -> SlaPolicy | None:
    return db.session.scalar(
        db.select(SlaPolicy).where(SlaPolicy.customer_id == customer_id, SlaPolicy.priority == priority)
    )


def calendar_for(customer_id: int, policy: SlaPolicy | None) -> Calendar:
    """The clock a policy runs on: 24/7, or the customer's business hours (Mon–Fri 9–17 by default)."""
    if policy is None or not policy.business_hours_only:
        return Calendar.twenty_four_seven()
    row = db.session.scalar(db.select(BusinessCalendar).where(BusinessCalendar.customer_id == customer_id))
    days = frozenset(db.session.scalars(db.select(Holiday.day).where(Holiday.customer_id == customer_id)))
    if row is None:
        zone = db.session.scalar(db.select(Customer.timezone).where(Customer.id == customer_id)) or "UTC"
        return Calendar(timezone=zone, holidays=days)
    return Calendar(
        timezone=row.timezone,
        working_days=frozenset(row.working_days),
        start_minute=row.start_minute,
        end_minute=row.end_minute,
        holidays=days,
    )


# --- deadlines -------------------------------------------------------------------------------


def apply_deadlines(ticket: Ticket, *, reason: str, now: datetime | None = None, actor: User | None = None) -> bool:
    """(Re)compute due_at, warn_at and the first-response deadline; a change goes on the timeline."""
    policy = policy_for(ticket.customer_id, ticket.priority)
    calendar = calendar_for(ticket.customer_id, policy)
    return _apply(ticket, policy, calendar, reason=reason, now=now or utcnow(), actor=actor)


def _apply(
    ticket: Ticket, policy: SlaPolicy | None, calendar: Calendar, *, reason: str, now: datetime, actor: User | None
) -> bool:
    before = ticket.due_at
    if policy is None:
        due = warn = first = None
    else:
        start, paused = ticket.created_at, ticket.paused_seconds or 0
        target = policy.resolution_minutes * 60
        due = business_time.add(start, target + paused, calendar)
        warn = business_time.add(start, max(target - policy.warning_minutes * 60, 0) + paused, calendar)
        first = (
            business_time.add(start, policy.first_response_minutes * 60, calendar)
            if policy.first_response_minutes
            else None
        )
    ticket.first_response_due_at = first
    if due == before and ticket.warn_at == warn:
        return False
    ticket.due_at, ticket.warn_at = due, warn
    ticket.warned_at = ticket.breached_at = None  # a new deadline is warned and breached afresh
    ticket.next_escalation_at, ticket.escalation_level = None, 0
    text = f"Deadline {_when(before)} → {_when(due)}: {reason}"
    _timeline(ticket, text, now=now, actor=actor, data={"from": _iso(before), "to": _iso(due), "reason": reason})
    return True


def on_status_change(
    ticket: Ticket, before: TicketStatus, after: TicketStatus, *, now: datetime, actor: User | None = None
) -> None:
    """Stop the clock when the ticket leaves open (pending, resolved), run it again when it returns."""
    if before in RUNNING and after not in RUNNING:
        ticket.paused_at = now
        if ticket.due_at is not None:  # a ticket without an SLA has no clock to mention
            word = "paused (waiting on the customer)" if after == TicketStatus.PENDING else f"stopped ({after})"
            _timeline(ticket, f"SLA clock {word}", now=now, actor=actor, data={"paused_at": _iso(now)})
    elif before not in RUNNING and after in RUNNING and ticket.paused_at is not None:
        policy = policy_for(ticket.customer_id, ticket.priority)
        stood = business_time.between(ticket.paused_at, now, calendar_for(ticket.customer_id, policy))
        ticket.paused_seconds = (ticket.paused_seconds or 0) + stood
        ticket.paused_at = None
        apply_deadlines(ticket, reason=f"clock resumed after {_duration(stood)} paused", now=now, actor=actor)


def recompute_customer(customer_id: int, priority: Priority, *, reason: str, now: datetime | None = None) -> int:
    """After a policy or calendar change: recompute the customer's unresolved tickets of that priority."""
    now = now or utcnow()
    tickets = db.session.scalars(
        db.select(Ticket).where(
            Ticket.customer_id == customer_id,
            Ticket.priority == priority,
            Ticket.status.in_((TicketStatus.OPEN, TicketStatus.PENDING)),
        )
    ).all()
    policy = policy_for(customer_id, priority)
    calendar = calendar_for(customer_id, policy)  # looked up once for all of them
    return sum(_apply(ticket, policy, calendar, reason=reason, now=now, actor=None) for ticket in tickets)


# --- ticket events ---------------------------------------------------------------------------


def ticket_event(ticket: Ticket, event_type: str, *, key: str, title: str, body: str = "", now: datetime) -> None:
    """Route a ticket event like any other (ingest: dedup, routing, webhooks, the outbox)."""
    sla_severity = EVENT_KINDS[event_type].sla_severity
    item = NormalisedEvent(
        source="sla" if sla_severity else "ticket",
        dedup_key=key[:255],
        status=EventStatus.FIRING if sla_severity else EventStatus.INFO,
        severity=sla_severity or ticket.priority.event_severity,
        title=title[:300],
        body=body,
        event_type=event_type,
        customer_id=ticket.customer_id,
        ticket_id=ticket.id,
        labels={"ticket": ticket.key, "priority": str(ticket.priority)},
        data=_ticket_data(ticket),
    )
    ingest.ingest([item], now=now)


def _ticket_data(ticket: Ticket) -> dict:
    return {
        "ticket_id": ticket.id,
        "ticket_key": ticket.key,
        "assignee_id": ticket.assignee_id,
        "status": str(ticket.status),
        "due_at": _iso(ticket.due_at),
    }


# --- the sweep -------------------------------------------------------------------------------


@dataclass
class SweepResult:
    warned: list[int] = field(default_factory=list)  # ticket ids
    breached: list[int] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)  # "OPS-12 level 1", "event 7 level 2"
    notifications: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"warned {len(self.warned)}, breached {len(self.breached)}, escalated {len(self.escalated)}, "
            f"notifications {len(self.notifications)}"
        )


# The ticket table's columns. OPEN_FOR_SLA is the literal status = 'open', not a bound value, so the planner
# can prove that the partial indexes ix_ticket_sla_warn / ix_ticket_sla_due apply (prepared statements too).
T = Ticket.__table__.c
MARKED = (T.id, T.customer_id, T.title, T.priority, T.due_at, T.assignee_id, T.status)


def warning_statement(now: datetime) -> sa.Update:
    """Mark every open, unwarned ticket past its warning time; only the sweep that flips a row gets it."""
    return (
        sa.update(Ticket.__table__)
        .where(OPEN_FOR_SLA, T.warned_at.is_(None), T.warn_at <= now)
        .values(warned_at=now, updated_at=now)
        .returning(*MARKED)
    )


def breach_statement(now: datetime) -> sa.Update:
    return (
        sa.update(Ticket.__table__)
        .where(OPEN_FOR_SLA, T.breached_at.is_(None), T.due_at <= now)
        .values(breached_at=now, updated_at=now)
        .returning(*MARKED)
    )


def claim_warnings(now: datetime) -> list[sa.Row]:
    return db.session.execute(warning_statement(now)).all()


def claim_breaches(now: datetime) -> list[sa.Row]:
    return db.session.execute(breach_statement(now)).all()


def check_sla(now: datetime | None = None) -> SweepResult:
    """Warn, breach and escalate what is due; flush, never commit (the caller commits, then enqueues)."""
    from webapp.services.events import escalation

    now = now or utcnow()
    db.session.flush()  # the marking UPDATEs are Core statements: they do not autoflush
    result = SweepResult()
    warned = [row for row in claim_warnings(now) if row.due_at > now]  # past due already: the breach says it
    breached = claim_breaches(now)
    items, entries = [], []
    for kind, rows, verb in (("sla_warning", warned, "due soon"), ("sla_breach", breached, "missed its SLA")):
        for row in rows:
            key = f"OPS-{row.id}"
            items.append(_sla_item(row, kind, f"{key} {verb}: {row.title}", now))
            text = f"SLA {'warning' if kind == 'sla_warning' else 'breached'}: due {_when(row.due_at)}"
            entries.append(_entry(row.id, "sla", text, now, {"event_type": kind, "due_at": _iso(row.due_at)}))
    result.warned = [row.id for row in warned]
    result.breached = [row.id for row in breached]
    bulk.expire(Ticket, result.warned + result.breached)
    if entries:
        bulk.insert_returning(TimelineEntry, entries, TimelineEntry.id)
    if items:
        result.notifications.extend(r.id for r in ingest.ingest(items, now=now).notifications)
    escalation.arm_tickets(breached, now=now)
    esc = escalation.escalate(now=now)
    result.escalated = esc.escalated
    result.notifications.extend(esc.notifications)
    return result


def _sla_item(row: sa.Row, kind: str, title: str, now: datetime) -> NormalisedEvent:
    return NormalisedEvent(
        source="sla",
        dedup_key=f"OPS-{row.id}:{kind}:{_iso(row.due_at)}",  # once per ticket per deadline
        status=EventStatus.FIRING,
        severity=EVENT_KINDS[kind].sla_severity,
        title=title[:300],
        body=f"Due {_when(row.due_at)}.",
        event_type=kind,
        customer_id=row.customer_id,
        ticket_id=row.id,
        labels={"ticket": f"OPS-{row.id}", "priority": str(row.priority)},
        data={
            "ticket_id": row.id,
            "ticket_key": f"OPS-{row.id}",
            "assignee_id": row.assignee_id,
            "due_at": _iso(row.due_at),
        },
    )


# --- small helpers ---------------------------------------------------------------------------


def _entry(ticket_id: int, kind: str, body: str, now: datetime, data: dict) -> dict:
    return {"ticket_id": ticket_id, "kind": kind, "body": body, "data": data, "actor_id": None, "created_at": now}


def _timeline(ticket: Ticket, body: str, *, now: datetime, actor: User | None, data: dict) -> None:
    db.session.add(
        TimelineEntry(
            ticket=ticket, kind="deadline", body=body, data=data, actor_id=actor.id if actor else None, created_at=now
        )
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "none"


def _duration(seconds: int) -> str:
    return str(timedelta(seconds=int(seconds)))
