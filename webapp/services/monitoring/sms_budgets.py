"""SMS budgets: once a customer's SMS spend reaches its monthly budget, its people are told, once per month
(an `sms_budget` event of source "budget": the customer's operators and the admins, by email and in the app,
never by SMS). The periodic job `check_sms_budgets` asks; the event's dedup key (customer and month) makes
"once" a database rule, whichever scheduler asks and however often.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from webapp.extensions import db
from webapp.models import Customer, EventStatus, Severity, utcnow
from webapp.pricing import money
from webapp.services import sms_spend
from webapp.services.events import ingest
from webapp.services.people import customers
from webapp.sources.normalised import NormalisedEvent

SOURCE = "budget"  # kinds.INTERNAL_ORIGINS
EVENT_TYPE = "sms_budget"  # kinds.EVENT_KINDS


def check(*, now: datetime | None = None) -> list[int]:
    """Tell the people of every active customer that reached its SMS budget this month (once); returns the
    ids of the customers told now. Flushes, never commits."""
    now = now or utcnow()
    budgets = dict(
        db.session.execute(
            db.select(Customer.id, Customer.sms_budget_micros).where(
                Customer.sms_budget_micros.is_not(None), Customer.is_active.is_(True)
            )
        ).all()
    )
    over = sms_spend.over_budget(budgets, now=now)
    if not over:
        return []
    month = sms_spend.Month.of(now)
    names = customers.names_of(over)
    currency = current_app.config["SMS_CURRENCY"]
    items = [
        NormalisedEvent(
            source=SOURCE,
            dedup_key=f"sms-budget-{customer_id}@{month.label}",
            status=EventStatus.FIRING,
            severity=Severity.HIGH,
            event_type=EVENT_TYPE,
            title=f"SMS budget reached for {names[customer_id]}",
            body=(
                f"{names[customer_id]} has spent {money(state.spent, currency)} on SMS in {month.title}, "
                f"its budget is {money(state.budget, currency)}. Until the month ends, SMS below critical go "
                "by email instead; critical pages still go by SMS. Raise the budget on the customer's page."
            ),
            data={"month": month.label, "spent_micros": state.spent, "budget_micros": state.budget},
            customer_id=customer_id,
            starts_at=now,
        )
        for customer_id, state in sorted(over.items())
    ]
    stored = ingest.ingest(items, now=now).events
    return [event.customer_id for event in stored]
