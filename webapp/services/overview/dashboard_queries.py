"""What the dashboard shows: what needs attention now, and the numbers behind its charts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import case, func, or_
from sqlalchemy.orm import joinedload

from webapp.extensions import db
from webapp.models import Customer, Notification, NotificationStatus, Ticket
from webapp.services.delivery import delivery_log
from webapp.services.tickets import sla_report, ticket_queries

if TYPE_CHECKING:
    from webapp.tenancy import Principal

S = NotificationStatus
STATUS_COLORS = {
    "delivered": "#2e7d32",
    "sent": "#66bb6a",
    "queued": "#42a5f5",
    "sending": "#1e88e5",
    "pending": "#90caf9",
    "deferred": "#b39ddb",
    "suppressed": "#bdbdbd",
    "failed": "#c62828",
}
CHANNEL_COLORS = {"sms": "#1565c0", "email": "#ef6c00", "web": "#6a1b9a", "webhook": "#00897b"}


def tickets_needing_attention(principal: Principal, *, now: datetime, limit: int = 10) -> tuple[list[Ticket], int, int]:
    """Breached first, then at risk, by deadline; and the two counts."""
    at_risk, breached = ticket_queries.at_risk(now), ticket_queries.breached(now)
    counts = db.session.execute(
        principal.scoped(
            db.select(
                func.count().filter(at_risk),
                func.count().filter(breached),
            ).where(or_(at_risk, breached)),
            Ticket.customer_id,
        )
    ).one()
    rows = list(
        db.session.scalars(
            principal.scoped(
                db.select(Ticket)
                .options(joinedload(Ticket.customer), joinedload(Ticket.assignee))
                .where(or_(at_risk, breached), Ticket.status.in_(("open", "pending"))),
                Ticket.customer_id,
            )
            .order_by(Ticket.due_at.asc())
            .limit(limit)
        )
    )
    return rows, counts[0] or 0, counts[1] or 0


def open_tickets(principal: Principal, *, limit: int = 5) -> tuple[list[Ticket], int]:
    """The newest open tickets and how many are open."""
    query = principal.scoped(db.select(Ticket).where(Ticket.status == "open"), Ticket.customer_id)
    rows = list(
        db.session.scalars(
            query.options(joinedload(Ticket.customer), joinedload(Ticket.assignee))
            .order_by(Ticket.id.desc())
            .limit(limit)
        )
    )
    total = db.session.scalar(db.select(func.count()).select_from(query.subquery()))
    return rows, total or 0


# What raw exception text in an error message means, for rows written before errors were put in words.
RAW_ERRORS = (
    (("ConnectionRefusedError", "[Errno 111]", "Connection refused"), "the server refused the connection"),
    (("gaierror", "Name or service not known", "[Errno -2]", "nodename nor servname"), "the name does not resolve"),
    (("TimeoutError", "timed out"), "the server did not answer in time"),
)
CHANNEL_NOUNS = {"email": ("email", "emails"), "sms": ("SMS", "SMS"), "webhook": ("webhook", "webhooks")}


def error_in_words(message: str | None, code: str | None) -> str:
    """A failure's cause as a person reads it: known raw exception text translated, the rest as it was written."""
    text = (message or "").strip()
    for needles, words in RAW_ERRORS:
        if any(needle in text for needle in needles):
            return words[0].upper() + words[1:]
    if text:
        return text
    return f"Error {code} from the provider" if code else "No reason given by the provider"


@dataclass(frozen=True)
class FailureCause:
    words: str  # "SMTP server localhost:25 (customer Acme): could not connect"
    channel: str
    count: int

    @property
    def line(self) -> str:
        one, many = CHANNEL_NOUNS.get(self.channel, ("notification", "notifications"))
        return f"{self.words} — {self.count} {one if self.count == 1 else many}"


def failure_causes(principal: Principal, *, now: datetime, limit: int = 8) -> tuple[list[FailureCause], int]:
    """The last 24 hours' failed deliveries grouped by cause (channel, code, message), the most frequent first,
    and how many failed in all."""
    query = delivery_log.visible_to(
        principal,
        db.select(Notification.channel, Notification.error_code, Notification.error_message, func.count()).where(
            Notification.status == S.FAILED, Notification.created_at >= now - timedelta(hours=24)
        ),
    ).group_by(Notification.channel, Notification.error_code, Notification.error_message)
    merged: dict[tuple[str, str], int] = {}
    for channel, code, message, count in db.session.execute(query):
        key = (str(channel), error_in_words(message, code))
        merged[key] = merged.get(key, 0) + count
    causes = [FailureCause(words=words, channel=channel, count=n) for (channel, words), n in merged.items()]
    return sorted(causes, key=lambda cause: (-cause.count, cause.words))[:limit], sum(merged.values())


def status_counts(principal: Principal, *, since: datetime) -> dict[str, int]:
    query = delivery_log.visible_to(
        principal, db.select(Notification.status, func.count()).where(Notification.created_at >= since)
    ).group_by(Notification.status)
    counts = dict(db.session.execute(query).all())
    return {status.value: counts.get(status, 0) for status in NotificationStatus}


def _hour_key(column):
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:00")
    return func.strftime("%Y-%m-%d %H:00", column)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass
class Chart:
    title: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # x, label
    max_value: int = 0
    legend: list[tuple[str, str]] = field(default_factory=list)  # name, color
    total: int = 0


def _stacked(
    title: str, labels: list[str], series: dict[str, list[int]], colors: dict[str, str], *, every: int
) -> Chart:
    width, height, top, bottom, left = 720, 180, 10, 20, 30
    plot_w, plot_h = width - left - 5, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    peak = max(totals, default=0) or 1
    slot = plot_w / max(len(labels), 1)
    chart = Chart(title, width, height, max_value=max(totals, default=0), total=sum(totals))
    for i, label in enumerate(labels):
        y = top + plot_h
        for name, values in series.items():
            if not values[i]:
                continue
            h = plot_h * values[i] / peak
            y -= h
            chart.bars.append(
                Bar(
                    round(left + i * slot + slot * 0.1, 2),
                    round(y, 2),
                    round(slot * 0.8, 2),
                    round(h, 2),
                    colors.get(name, "#777"),
                    f"{label} UTC: {values[i]} {name}",
                )
            )
        if i % every == 0:
            chart.ticks.append((round(left + i * slot, 2), label[-5:] if every < 24 else label[5:10]))
    chart.legend = [(name, colors.get(name, "#777")) for name, values in series.items() if any(values)]
    return chart


def delivery_charts(principal: Principal, *, now: datetime, days: int) -> tuple[Chart, Chart]:
    """Deliveries per hour over the last `days`, stacked by status and by channel (one GROUP BY)."""
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hour = _hour_key(Notification.created_at)
    rows = db.session.execute(
        delivery_log.visible_to(
            principal,
            db.select(hour, Notification.channel, Notification.status, func.count()).where(
                Notification.created_at >= start
            ),
        ).group_by(hour, Notification.channel, Notification.status)
    ).all()
    labels = [(start + timedelta(hours=i)).strftime("%Y-%m-%d %H:00") for i in range(days * 24)]
    index = {label: i for i, label in enumerate(labels)}
    by_status = {s: [0] * len(labels) for s in STATUS_COLORS}
    by_channel = {c: [0] * len(labels) for c in CHANNEL_COLORS}
    for key, channel, status, count in rows:
        i = index.get(key)
        if i is None:
            continue
        by_status[str(status)][i] += count
        by_channel[str(channel)][i] += count
    every = 3 if days == 1 else 24
    span = "24 hours" if days == 1 else f"{days} days"
    return (
        _stacked(f"Deliveries per hour by status, last {span}", labels, by_status, STATUS_COLORS, every=every),
        _stacked(f"Deliveries per hour by channel, last {span}", labels, by_channel, CHANNEL_COLORS, every=every),
    )


@dataclass(frozen=True)
class Compliance:
    customer: str
    met: int
    breached: int

    @property
    def percent(self) -> int | None:
        total = self.met + self.breached
        return round(100 * self.met / total) if total else None


def sla_compliance(principal: Principal, *, now: datetime, days: int = 30) -> list[Compliance]:
    """Per customer, among tickets due in the window: met (resolved by the deadline, never breached) vs breached."""
    sla = sla_report.outcome(now)
    query = principal.scoped(
        db.select(
            Customer.name,
            func.sum(case((sla.met, 1), else_=0)),
            func.sum(case((sla.breached, 1), else_=0)),
        )
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.due_at >= now - timedelta(days=days), Ticket.due_at <= now)
        .group_by(Customer.name)
        .order_by(Customer.name),
        Ticket.customer_id,
    )
    return [Compliance(name, int(m or 0), int(b or 0)) for name, m, b in db.session.execute(query)]
