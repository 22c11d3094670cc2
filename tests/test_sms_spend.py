"""SMS spend: each SMS priced when Twilio accepts it (segments x its country's price), the month's spend per
customer and country on the report, the API, the CSV, the dashboard and /metrics; the monthly budget that
sends non-critical SMS by email once reached (critical pages still go), told to the customer's people once;
only an admin sets the budget, and bad amounts or prices are refused with a message."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.routing_helpers import fire, rows
from webapp import config, pricing
from webapp.extensions import db
from webapp.jobs import check_sms_budgets
from webapp.models import ApiKey, Customer, Event, Notification, NotificationStatus, utcnow
from webapp.services import sms_spend
from webapp.services.integrations import api_keys

US, GB = "+14155550101", "+447700900123"
LONG = "x" * 200  # GSM-7: two segments


def send(customer, *, severity="critical", title="DiskFull", body="", now=None) -> Event:
    return fire(
        customer=customer, severity=severity, title=title, key=f"{title}-{severity}-{customer.id}", now=now or utcnow()
    )


def scraped(client, customer, country: str) -> float:
    """opsrelay_sms_spend_total for this customer and country, from /metrics (0 before the first SMS)."""
    line = f'opsrelay_sms_spend_total{{country="{country}",customer="{customer.id}"}} '
    found = [row for row in client.get("/metrics").text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def test_prices_are_the_default_table_with_the_setting_laid_over_it():
    prices = pricing.parse_prices("gb=0.05; DE = 0.1, *=0.02")
    assert prices["GB"] == 50_000 and prices["DE"] == 100_000 and prices["*"] == 20_000
    assert prices["US"] == 8_300  # untouched default
    assert pricing.segment_price(prices, "unknown") == 20_000
    for bad, says in [
        ("US", "COUNTRY=PRICE"),
        ("USA=1", "COUNTRY=PRICE"),
        ("US=abc", "not an amount"),
        ("US=-1", "0 or more"),
    ]:
        with pytest.raises(ValueError, match=says):
            pricing.parse_prices(bad)
    assert pricing.money(8_300, "USD") == "0.0083 USD"
    assert pricing.money(12_345_678_900, "EUR") == "12,345.68 EUR"


def test_a_bad_price_setting_stops_the_app_with_its_name(monkeypatch, tmp_path):
    monkeypatch.setenv("SMS_PRICES", "US=cheap")
    with pytest.raises(config.ConfigError, match="SMS_PRICES: 'cheap' is not an amount of money"):
        config.from_environment(str(tmp_path))


def test_each_sms_is_priced_by_its_country_and_segments_when_twilio_accepts_it(
    make_user, customer, make_customer, twilio, drain, client, login_as
):
    other = make_customer("Globex")
    make_user("operator", phone=US)
    make_user("operator", phone=GB)
    make_user("operator", phone="+14155550199", customers=[other])
    spent_before = scraped(client, customer, "GB")
    send(customer)
    fire(customer=customer, severity="critical", title="Long " + LONG, key="long", now=utcnow())
    send(other)
    drain()
    assert scraped(client, customer, "GB") == pytest.approx(spent_before + 0.2096)
    assert len(twilio.received) == 5
    sent = list(db.session.scalars(sa.select(Notification).where(Notification.channel == "sms")))
    price = {"US": 8_300, "GB": 52_400}
    assert {(n.recipient, n.sms_country) for n in sent} == {(US, "US"), (GB, "GB"), ("+14155550199", "US")}
    assert all(n.sms_cost_micros == n.sms_segments * price[n.sms_country] for n in sent)
    long = [n for n in sent if n.event.title.startswith("Long")]
    assert len(long) == 2 and all(n.sms_segments == 3 for n in long), [n.sms_segments for n in long]  # 200+ chars

    login_as("admin", customers=[])
    page = client.get("/reports/sms-spend")
    assert page.status_code == 200
    table = page.text.split('id="sms-spend"')[1]
    acme = table.split(customer.name)[1].split("</tr>")[0]
    assert "0.24 USD" in acme  # 4 US segments (0.0332) + 4 GB segments (0.2096)
    assert "GB: 4 seg · 0.21 USD" in acme and "US: 4 seg · 0.03 USD" in acme
    assert "0.0083 USD" in table.split("Globex")[1].split("</tr>")[0]
    dashboard = client.get("/")
    assert "0.25 USD" in dashboard.text.split('id="sms-spend-card"')[1]  # every customer: 0.2511

    listing = client.get(f"/reports/sms-spend.csv?month={utcnow():%Y-%m}")
    lines = list(csv.DictReader(io.StringIO(listing.text)))
    assert {(r["customer"], r["country"], r["segments"], r["cost"]) for r in lines} == {
        (customer.name, "US", "4", "0.0332"),
        (customer.name, "GB", "4", "0.2096"),
        ("Globex", "US", "1", "0.0083"),
    }


def test_the_api_report_is_scoped_to_the_keys_customer_and_refuses_a_bad_month(
    make_user, customer, make_customer, client, drain
):
    other = make_customer("Globex")
    make_user("operator", phone=US)
    make_user("operator", phone=GB, customers=[other])
    send(customer)
    send(other)
    drain()
    owner = make_user("operator")
    _, key = api_keys.create_key(name="r", scopes=["read"], customer=customer, expires_days=None, created_by=owner)
    headers = {"Authorization": f"Bearer {key}"}
    answer = client.get("/api/v1/reports/sms-spend", headers=headers)
    assert answer.status_code == 200
    assert [(r["customer"], r["cost"], r["segments"]) for r in answer.json["rows"]] == [(customer.name, "0.0083", 1)]
    assert answer.json["currency"] == "USD" and answer.json["month"] == f"{utcnow():%Y-%m}"
    bad = client.get("/api/v1/reports/sms-spend?month=2026-13", headers=headers)
    assert bad.status_code == 400 and "month" in bad.json["error"]["fields"]
    last_year = client.get("/api/v1/reports/sms-spend?month=2025-01", headers=headers)
    assert last_year.json["rows"] == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 1


def test_past_the_budget_non_critical_sms_go_by_email_and_critical_pages_still_go(make_user, customer, drain, twilio):
    pager = make_user("operator", phone=US)
    customer.sms_budget_micros = 10_000  # one US segment costs 8,300: the second SMS passes it
    db.session.commit()
    send(customer)
    send(customer, title="CpuHot")
    drain()
    assert len(twilio.received) == 2

    high = fire(customer=customer, severity="high", title="QueueSlow", key="q", now=utcnow())
    decided = rows(high)
    # operators' default: high alerts by web and email, SMS only when critical; make SMS the only way
    assert decided[(pager.id, "email")].status == NotificationStatus.PENDING
    pref_event = _with_sms_for_high(pager, customer)
    decided = rows(pref_event)
    sms, email = decided[(pager.id, "sms")], decided[(pager.id, "email")]
    assert sms.status == NotificationStatus.SUPPRESSED
    assert sms.reason.startswith(f"{customer.name}'s SMS budget for this month is reached (0.02 USD of 0.01 USD)")
    assert email.status == NotificationStatus.PENDING and email.recipient == pager.email
    assert email.reason == "sent by email instead of SMS: the customer's monthly SMS budget is reached"

    critical = send(customer, title="Outage")
    assert rows(critical)[(pager.id, "sms")].status == NotificationStatus.PENDING
    drain()
    assert [m["To"] for m in twilio.received] == [US, US, US]  # the critical page; nothing else by SMS


def _with_sms_for_high(user, customer) -> Event:
    from tests.routing_helpers import prefer

    prefer(user, customer, enabled_channels=["sms"], min_severity_sms="high", min_severity_email="critical")
    return fire(customer=customer, severity="high", title="QueueSlower", key="q2", now=utcnow())


def test_reaching_the_budget_tells_the_customers_people_once_by_email_never_by_sms(
    make_user, customer, drain, make_customer
):
    operator = make_user("operator", phone=US)
    admin = make_user("admin", customers=[])
    viewer = make_user("viewer", phone="+14155550177")
    outsider = make_user("operator", customers=[make_customer("Globex")])
    customer.sms_budget_micros = 5_000
    db.session.commit()
    assert check_sms_budgets() == {"told": []}  # nothing spent yet
    send(customer)
    drain()
    assert check_sms_budgets() == {"told": [customer.id]}
    assert check_sms_budgets() == {"told": []}  # once a month
    notice = db.session.scalar(sa.select(Event).where(Event.event_type == "sms_budget"))
    assert notice.title == f"SMS budget reached for {customer.name}"
    assert "0.0083 USD" in notice.body and "0.0050 USD" in notice.body
    told = {
        (n.user_id, str(n.channel))
        for n in db.session.scalars(sa.select(Notification).where(Notification.event_id == notice.id))
    }
    assert told == {(operator.id, "web"), (operator.id, "email"), (admin.id, "web"), (admin.id, "email")}
    assert not {viewer.id, outsider.id} & {user for user, _ in told}


def test_a_budget_of_last_month_does_not_count(make_user, customer, drain):
    make_user("operator", phone=US)
    customer.sms_budget_micros = 5_000
    db.session.commit()
    send(customer)
    drain()
    db.session.execute(
        sa.update(Notification).values(sent_at=sms_spend.Month.of(utcnow()).start - timedelta(seconds=1))
    )
    db.session.commit()
    assert sms_spend.over_budget({customer.id: 5_000}) == {}
    assert check_sms_budgets() == {"told": []}


def test_only_an_admin_sets_the_budget_and_a_bad_amount_is_refused(client, login_as, customer):
    login_as("admin", customers=[])
    form = {"name": customer.name, "timezone": "UTC", "is_active": "y"}
    assert client.post(f"/customers/{customer.id}/edit", data={**form, "sms_budget": "49.90"}).status_code == 302
    db.session.refresh(customer)
    assert customer.sms_budget_micros == 49_900_000
    assert 'value="49.9"' in client.get(f"/customers/{customer.id}/edit").text
    for bad, says in [("lots", "is not an amount of money"), ("-3", "0 or more"), ("1e30", "is more than")]:
        refused = client.post(f"/customers/{customer.id}/edit", data={**form, "sms_budget": bad})
        assert refused.status_code == 400 and says in refused.text
    db.session.refresh(customer)
    assert customer.sms_budget_micros == 49_900_000

    client.post("/logout")
    login_as("operator", customers=[customer])
    page = client.get(f"/customers/{customer.id}/edit").text
    assert 'name="sms_budget"' not in page and "49.90 USD" in page
    kept = client.post(f"/customers/{customer.id}/edit", data={**form, "name": "Acme Renamed"})
    assert kept.status_code == 302
    raised = client.post(f"/customers/{customer.id}/edit", data={**form, "sms_budget": "5000"})
    assert raised.status_code == 400 and "Only an admin can change the SMS budget." in raised.text
    db.session.refresh(customer)
    assert (customer.name, customer.sms_budget_micros) == ("Acme Renamed", 49_900_000)
    assert db.session.scalar(sa.select(Customer.sms_budget_micros).where(Customer.id == customer.id)) == 49_900_000
