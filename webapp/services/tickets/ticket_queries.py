"""Reading tickets for the pages: filters, SLA states, keyset pages and the merged timeline."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import joinedload

from webapp.extensions import db
from webapp.models import (
    Event,
    Notification,
    Priority,
    Role,
    Ticket,
    TicketStatus,
    TimelineEntry,
    User,
    user_customer,
    utcnow,
)
from webapp.paging import KeysetPage, keyset_page

if TYPE_CHECKING:
    from webapp.tenancy import Principal

KEY_PATTERN = re.compile(r"^\s*(?:ops-)?(\d{1,12})\s*$", re.IGNORECASE)


def at_risk(now: datetime) -> ColumnElement[bool]:
    """Open, past the warning time, not yet past the deadline."""
    return and_(
        Ticket.status == TicketStatus.OPEN,
        Ticket.breached_at.is_(None),
        Ticket.warn_at <= now,
        or_(Ticket.due_at.is_(None), Ticket.due_at > now),
    )


def breached(now: datetime) -> ColumnElement[bool]:
    """Marked breached by the SLA sweep, or open past its deadline (the sweep has not run yet)."""
    return or_(
        Ticket.breached_at.is_not(None),
        and_(Ticket.status == TicketStatus.OPEN, Ticket.due_at <= now),
    )


def sla_state(ticket: Ticket, now: datetime | None = None) -> str:
    now = now or utcnow()
    if ticket.breached_at is not None or (
        ticket.status == TicketStatus.OPEN and ticket.due_at is not None and ticket.due_at <= now
    ):
        return "breached"
    if ticket.status == TicketStatus.PENDING:
        return "paused"
    if ticket.status != TicketStatus.OPEN or ticket.due_at is None:
        return "no_sla" if ticket.due_at is None else "none"
    if ticket.warn_at is not None and ticket.warn_at <= now:
        return "at_risk"
    return "on_track"


@dataclass(frozen=True)
class TicketFilter:
    q: str = ""
    status: TicketStatus | None = None
    priority: Priority | None = None
    customer_id: int | None = None
    assignee_id: int | None = None  # 0: unassigned
    sla: str | None = None  # at_risk, breached


def page(
    f: TicketFilter,
    *,
    principal: Principal,
    before: int | None = None,
    after: int | None = None,
    per_page: int = 50,
    now: datetime | None = None,
) -> KeysetPage:
    """Newest first, by key: one statement per page (customer and assignee joined in)."""
    now = now or utcnow()
    query = principal.scoped(
        db.select(Ticket).options(joinedload(Ticket.customer), joinedload(Ticket.assignee)), Ticket.customer_id
    )
    if f.status is not None:
        query = query.where(Ticket.status == f.status)
    if f.priority is not None:
        query = query.where(Ticket.priority == f.priority)
    if f.customer_id is not None:
        query = query.where(Ticket.customer_id == f.customer_id)
    if f.assignee_id is not None:
        query = query.where(Ticket.assignee_id == f.assignee_id if f.assignee_id else Ticket.assignee_id.is_(None))
    if f.sla == "at_risk":
        query = query.where(at_risk(now))
    elif f.sla == "breached":
        query = query.where(breached(now))
    if f.q:
        key = KEY_PATTERN.match(f.q)
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        text_match = or_(Ticket.title.ilike(pattern, escape="\\"), Ticket.description.ilike(pattern, escape="\\"))
        query = query.where(or_(Ticket.id == int(key.group(1)), text_match) if key else text_match)
    return keyset_page(query, Ticket.id, per_page=per_page, before=before, after=after)


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    text: str
    actor: str | None
    link: tuple[str, int] | None = None  # ("notification", id) for notifications sent


def timeline(ticket: Ticket) -> list[TimelineItem]:
    """The ticket's entries and the notifications sent for its events, oldest first (three statements)."""
    entries = list(
        db.session.scalars(
            db.select(TimelineEntry).where(TimelineEntry.ticket_id == ticket.id).order_by(TimelineEntry.id)
        )
    )
    notifications = list(
        db.session.scalars(
            db.select(Notification)
            .options(joinedload(Notification.user))
            .where(Notification.event_id.in_(db.select(Event.id).where(Event.ticket_id == ticket.id)))
            .order_by(Notification.id)
            .limit(500)
        )
    )
    actor_ids = {e.actor_id for e in entries if e.actor_id}
    names = (
        dict(db.session.execute(db.select(User.id, User.name).where(User.id.in_(actor_ids))).all()) if actor_ids else {}
    )
    items = [TimelineItem(e.created_at, e.kind, e.body, names.get(e.actor_id)) for e in entries]
    by_event: dict[int | None, list[Notification]] = {}
    for n in notifications:
        by_event.setdefault(n.event_id, []).append(n)
    for event_id, rows in by_event.items():  # one line per event told, not one per person and channel
        items.append(_notified(event_id, rows))
    return sorted(items, key=lambda item: item.at)


def _notified(event_id: int | None, rows: list[Notification]) -> TimelineItem:
    if len(rows) == 1:
        n = rows[0]
        who = n.user.name if n.user else n.masked_recipient
        return TimelineItem(
            n.created_at, "notification", f"{n.channel} to {who}: {n.status}", None, ("notification", n.id)
        )
    outcomes = Counter(f"{n.channel} {n.status}" for n in rows)
    people = sorted({n.user.name for n in rows if n.user})
    shown = ", ".join(people[:5]) + (f" and {len(people) - 5} more" if len(people) > 5 else "")
    text = f"{len(rows)} notifications: " + ", ".join(f"{what} ×{count}" for what, count in sorted(outcomes.items()))
    return TimelineItem(
        rows[0].created_at, "notification", text + (f" — to {shown}" if shown else ""), None, ("event", event_id)
    )


def assignable_users(customer_id: int) -> list[User]:
    """Active operators and admins who can work the customer's tickets."""
    members = db.select(user_customer.c.user_id).where(user_customer.c.customer_id == customer_id)
    return list(
        db.session.scalars(
            db.select(User)
            .where(
                User.is_active.is_(True),
                or_(User.role == Role.ADMIN, and_(User.role == Role.OPERATOR, User.id.in_(members))),
            )
            .order_by(User.name)
            .limit(500)
        )
    )
