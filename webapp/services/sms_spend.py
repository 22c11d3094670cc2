"""SMS spend: what each customer's SMS cost in a month (calendar months in UTC, as providers bill), priced
when each SMS is really handed to the provider (`price`), and the optional monthly budget that, once
reached, sends non-critical SMS by email instead (webapp.services.routing.decisions asks `over_budget`).

Amounts are micros of SMS_CURRENCY (webapp.pricing). A simulated SMS (no Twilio account
configured) costs nothing and is counted apart.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func

from webapp import metrics, tenancy
from webapp.extensions import db
from webapp.models import Channel, Customer, Notification, utcnow
from webapp.pricing import amount, money, segment_price
from webapp.validation import country_of


@dataclass(frozen=True)
class Month:
    start: datetime
    end: datetime  # the first instant of the next month

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m")

    @property
    def title(self) -> str:
        return self.start.strftime("%B %Y")

    @classmethod
    def of(cls, when: datetime) -> Month:
        start = when.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return cls(start, _next_month(start))

    @classmethod
    def parse(cls, label: str) -> Month:
        """ "2026-12" as a Month; ValueError with a readable message otherwise."""
        try:
            start = datetime.strptime(label.strip(), "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"{label!r} is not a month: write it as YYYY-MM, e.g. 2026-12") from None
        return cls(start, _next_month(start))

    def previous(self) -> Month:
        return Month.of(self.start - timedelta(days=1))

    def next(self) -> Month:
        return Month(self.end, _next_month(self.end))


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def price(notification: Notification) -> None:
    """Price an SMS the provider just accepted: its country and segments x that country's price per segment."""
    country = country_of(notification.recipient)
    notification.sms_country = country
    metrics.sms_segments.labels(country=country).inc(notification.sms_segments or 1)
    if notification.simulated:
        notification.sms_cost_micros = 0
        return
    prices = current_app.config["SMS_PRICES"]
    notification.sms_cost_micros = (notification.sms_segments or 1) * segment_price(prices, country)
    metrics.sms_spend.labels(customer=str(notification.customer_id or "none"), country=country).inc(
        notification.sms_cost_micros / 1_000_000
    )


def spent(customer_ids, month: Month) -> dict[int, int]:
    """Micros spent on SMS by each of these customers in `month` (customers with no spend left out)."""
    if not customer_ids:
        return {}
    query = (
        db.select(Notification.customer_id, func.coalesce(func.sum(Notification.sms_cost_micros), 0))
        .where(
            Notification.customer_id.in_(list(customer_ids)),
            Notification.sent_at >= month.start,
            Notification.sent_at < month.end,
            Notification.channel == Channel.SMS,
        )
        .group_by(Notification.customer_id)
    )
    return {customer_id: int(total) for customer_id, total in db.session.execute(query).all() if total}


@dataclass(frozen=True)
class OverBudget:
    spent: int
    budget: int

    def reason(self, customer: str, currency: str) -> str:
        return (
            f"{customer}'s SMS budget for this month is reached ({money(self.spent, currency)} of "
            f"{money(self.budget, currency)}): below critical, SMS go by email"
        )


def over_budget(budgets: dict[int, int | None], *, now: datetime | None = None) -> dict[int, OverBudget]:
    """The customers (of those whose budgets are given) that have spent their budget this month."""
    budgets = {cid: budget for cid, budget in budgets.items() if budget is not None}
    if not budgets:
        return {}
    totals = spent(budgets, Month.of(now or utcnow()))
    return {
        cid: OverBudget(totals.get(cid, 0), budget) for cid, budget in budgets.items() if totals.get(cid, 0) >= budget
    }


# --- the report ------------------------------------------------------------------------------------------


@dataclass
class SpendRow:
    customer_id: int | None
    customer: str
    messages: int = 0
    segments: int = 0
    cost: int = 0  # micros
    simulated: int = 0  # simulated messages: not billed
    budget: int | None = None
    countries: dict[str, list[int]] = field(default_factory=dict)  # country -> [messages, segments, cost]

    @property
    def budget_used(self) -> float | None:
        if not self.budget:
            return None
        return 100.0 * self.cost / self.budget


@dataclass
class SpendReport:
    month: Month
    currency: str
    rows: list[SpendRow]

    @property
    def total(self) -> SpendRow:
        total = SpendRow(None, "All customers")
        for row in self.rows:
            total.messages += row.messages
            total.segments += row.segments
            total.cost += row.cost
            total.simulated += row.simulated
        return total

    def money(self, micros: int | None) -> str:
        return money(micros, self.currency)

    def as_dicts(self) -> list[dict]:
        """One dict per customer, amounts as decimal strings in `currency` (exact, unlike floats)."""
        return [
            {
                "customer_id": row.customer_id,
                "customer": row.customer,
                "messages": row.messages,
                "segments": row.segments,
                "cost": amount(row.cost) or "0",
                "budget": amount(row.budget) if row.budget is not None else None,
                "budget_used_percent": round(row.budget_used, 1) if row.budget_used is not None else None,
                "simulated_messages": row.simulated,
                "countries": [
                    {"country": country, "messages": m, "segments": seg, "cost": amount(cost) or "0"}
                    for country, (m, seg, cost) in sorted(row.countries.items())
                ],
            }
            for row in self.rows
        ]

    def to_csv(self) -> str:
        """One line per customer and country, for a spreadsheet."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["month", "customer_id", "customer", "country", "messages", "segments", "cost", "currency"])
        for row in self.rows:
            for country, (messages, segments, cost) in sorted(row.countries.items()):
                writer.writerow(
                    [
                        self.month.label,
                        row.customer_id or "",
                        row.customer,
                        country,
                        messages,
                        segments,
                        amount(cost) or "0",
                        self.currency,
                    ]
                )
        return out.getvalue()


def month_asked(label: str | None, *, now: datetime | None = None) -> Month:
    """The month a request names (YYYY-MM), this month without one; ValueError for a bad one."""
    return Month.parse(label) if label else Month.of(now or utcnow())


def report(month: Month, *, principal: tenancy.Principal | None = None) -> SpendReport:
    """Every customer the principal sees: SMS sent in `month`, segments, cost (by country) and budget. One
    grouped query; customers without SMS are listed when they have a budget."""
    principal = principal or tenancy.current()
    query = principal.scoped(
        db.select(
            Notification.customer_id,
            Notification.sms_country,
            Notification.simulated,
            func.count(),
            func.coalesce(func.sum(Notification.sms_segments), 0),
            func.coalesce(func.sum(Notification.sms_cost_micros), 0),
        )
        .where(
            Notification.channel == Channel.SMS,
            Notification.sent_at >= month.start,
            Notification.sent_at < month.end,
        )
        .group_by(Notification.customer_id, Notification.sms_country, Notification.simulated),
        Notification.customer_id,
    )
    customers = {
        c.id: c for c in db.session.scalars(principal.scoped(db.select(Customer).order_by(Customer.name), Customer.id))
    }
    rows: dict[int | None, SpendRow] = {
        cid: SpendRow(cid, c.name, budget=c.sms_budget_micros)
        for cid, c in customers.items()
        if c.sms_budget_micros is not None
    }
    for customer_id, country, simulated, count, segments, cost in db.session.execute(query).all():
        row = rows.get(customer_id)
        if row is None:
            customer = customers.get(customer_id)
            row = rows[customer_id] = SpendRow(
                customer_id,
                customer.name if customer else "No customer (internal alerts, test sends)",
                budget=customer.sms_budget_micros if customer else None,
            )
        if simulated:
            row.simulated += count
            continue
        row.messages += count
        row.segments += int(segments)
        row.cost += int(cost)
        per_country = row.countries.setdefault(country or "unknown", [0, 0, 0])
        per_country[0] += count
        per_country[1] += int(segments)
        per_country[2] += int(cost)
    ordered = sorted(rows.values(), key=lambda r: (-r.cost, r.customer_id is None, r.customer))
    return SpendReport(month, current_app.config["SMS_CURRENCY"], ordered)
