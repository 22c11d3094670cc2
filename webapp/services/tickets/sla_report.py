"""SLA compliance per customer and priority over a period: one GROUP BY, no row-by-row counting.

For the tickets created in [start, end): met (resolved, never breached), breached (missed a deadline,
even a moved one, or resolved late), at risk (still running, past the warning time, not breached), open (running,
not yet at risk), mean time to resolve and the time their clocks stood paused.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from webapp.extensions import db
from webapp.inputs import utc_time
from webapp.models import Customer, Event, Ticket, TicketStatus, utcnow

if TYPE_CHECKING:
    from webapp.tenancy import Principal

COLUMNS = (
    "customer_id",
    "customer",
    "priority",
    "tickets",
    "met",
    "breached",
    "at_risk",
    "open",
    "compliance_percent",
    "mean_time_to_resolve_seconds",
    "paused_seconds",
)


@dataclass(frozen=True)
class ReportRow:
    customer_id: int
    customer: str
    priority: str
    tickets: int
    met: int
    breached: int
    at_risk: int
    open: int
    compliance_percent: float | None  # met / (met + breached); None when nothing was decided
    mean_time_to_resolve_seconds: int | None
    paused_seconds: int


def _seconds_between(later: sa.ColumnElement, earlier: sa.ColumnElement) -> sa.ColumnElement:
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


@dataclass(frozen=True)
class Outcome:
    """What became of a ticket's SLA, as SQL conditions: the one rule the report and the dashboard count by."""

    running: sa.ColumnElement[bool]  # open or pending
    met: sa.ColumnElement[bool]  # resolved (resolved_at set: resolved or closed), and no deadline missed
    breached: sa.ColumnElement[bool]  # a deadline missed: marked, an earlier one missed, or resolved too late
    at_risk: sa.ColumnElement[bool]  # running, past the warning time, not breached


def outcome(now: datetime) -> Outcome:
    running = Ticket.status.in_((TicketStatus.OPEN, TicketStatus.PENDING))
    # A later deadline clears breached_at, but the breach event of the earlier one stays.
    missed_before = sa.exists().where(
        Event.ticket_id == Ticket.id, Event.event_type == "sla_breach", Event.source == "sla"
    )
    # Resolved after its deadline (a running ticket past it is breached once the sweep marks it, within a minute).
    too_late = Ticket.due_at.is_not(None) & Ticket.resolved_at.is_not(None) & (Ticket.resolved_at > Ticket.due_at)
    breached = Ticket.breached_at.is_not(None) | missed_before | too_late
    return Outcome(
        running=running,
        met=Ticket.resolved_at.is_not(None) & ~breached,
        breached=breached,
        at_risk=running & ~breached & (Ticket.warn_at <= now),
    )


def compliance(
    *, start: datetime, end: datetime, principal: Principal | None = None, now: datetime | None = None
) -> list[ReportRow]:
    """The report's rows for the tickets created in [start, end) that `principal` sees (None: all)."""
    now = now or utcnow()
    sla = outcome(now)
    running, breached, at_risk = sla.running, sla.breached, sla.at_risk
    resolved = Ticket.resolved_at.is_not(None) & ~running

    def count(condition) -> sa.ColumnElement:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    query = (
        sa.select(
            Ticket.customer_id,
            Customer.name,
            Ticket.priority,
            sa.func.count(Ticket.id),
            count(sla.met),
            count(breached),
            count(at_risk),
            count(running & ~breached & ~at_risk),
            sa.func.avg(sa.case((resolved, _seconds_between(Ticket.resolved_at, Ticket.created_at)))),
            sa.func.sum(Ticket.paused_seconds),
        )
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.created_at >= start, Ticket.created_at < end)
        .group_by(Ticket.customer_id, Customer.name, Ticket.priority)
        .order_by(Customer.name, Ticket.priority)
    )
    if principal is not None:
        query = principal.scoped(query, Ticket.customer_id)
    rows = []
    for cid, name, priority, total, met, missed, risky, running_count, mttr, paused in db.session.execute(query):
        decided = (met or 0) + (missed or 0)
        rows.append(
            ReportRow(
                customer_id=cid,
                customer=name,
                priority=str(priority),
                tickets=total,
                met=int(met or 0),
                breached=int(missed or 0),
                at_risk=int(risky or 0),
                open=int(running_count or 0),
                compliance_percent=round(100.0 * (met or 0) / decided, 1) if decided else None,
                mean_time_to_resolve_seconds=None if mttr is None else round(float(mttr)),
                paused_seconds=int(paused or 0),
            )
        )
    return rows


def to_csv(rows: list[ReportRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        values = asdict(row)
        values["customer"] = _safe_cell(values["customer"])
        writer.writerow({k: "" if v is None else v for k, v in values.items()})
    return out.getvalue()


def _safe_cell(text: str) -> str:
    """Keep spreadsheet formulas out of a cell a customer name fills."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def as_dicts(rows: list[ReportRow]) -> list[dict]:
    return [asdict(row) for row in rows]


DEFAULT_DAYS = 30


def period(since: str | None, until: str | None, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The report's period from ISO dates or times (`from`, `to`); the last 30 days by default.

    Raises ValueError(field, message) for a value that is not a date, or a period that ends first.
    """
    from datetime import timedelta

    now = now or utcnow()

    def parse(name: str, raw: str | None, default: datetime) -> datetime:
        if raw is None or raw.strip() == "":
            return default
        try:
            return utc_time(raw.strip())
        except ValueError:
            raise ValueError(name, "a date (2026-04-01) or an ISO 8601 time") from None

    end = parse("to", until, now)
    start = parse("from", since, end - timedelta(days=DEFAULT_DAYS))
    if start >= end:
        raise ValueError("from", "must be before 'to'")
    return start, end
