"""The SLA report on a known data set: JSON, CSV and the page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from webapp.api.access import new_key
from webapp.extensions import db
from webapp.models import ApiKey, Priority, Role, TicketStatus, utcnow
from webapp.security import hash_api_key
from webapp.services.tickets import sla_report
from webapp.tenancy import Principal


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NOW = at("2026-04-20T12:00:00")


@pytest.fixture
def known(customer, make_customer, make_ticket):
    """Acme normal: met (2 h), breached (6 h), at risk, open; urgent: met (1 h). Globex: one met. March: out."""
    globex = make_customer("Globex")
    resolved = TicketStatus.RESOLVED
    make_ticket(
        customer=customer,
        status=resolved,
        created_at=at("2026-04-01T08:00:00"),
        resolved_at=at("2026-04-01T10:00:00"),
        due_at=at("2026-04-01T12:00:00"),
    )
    make_ticket(
        customer=customer,
        status=resolved,
        created_at=at("2026-04-02T08:00:00"),
        resolved_at=at("2026-04-02T14:00:00"),
        breached_at=at("2026-04-02T12:00:00"),
    )
    make_ticket(
        customer=customer,
        created_at=at("2026-04-19T08:00:00"),
        warn_at=at("2026-04-20T11:00:00"),
        due_at=at("2026-04-20T12:30:00"),
        paused_seconds=1800,
    )
    make_ticket(customer=customer, created_at=at("2026-04-20T08:00:00"), warn_at=at("2026-04-21T08:00:00"))
    make_ticket(
        customer=customer,
        priority=Priority.URGENT,
        status=TicketStatus.CLOSED,
        created_at=at("2026-04-03T08:00:00"),
        resolved_at=at("2026-04-03T09:00:00"),
    )
    make_ticket(
        customer=customer, status=resolved, created_at=at("2026-03-15T08:00:00"), resolved_at=at("2026-03-15T09:00:00")
    )
    make_ticket(
        customer=globex, status=resolved, created_at=at("2026-04-05T08:00:00"), resolved_at=at("2026-04-05T08:30:00")
    )
    return customer, globex


def test_figures_on_a_known_data_set(app, known):
    acme, globex = known
    rows = sla_report.compliance(start=at("2026-04-01T00:00:00"), end=at("2026-05-01T00:00:00"), now=NOW)
    by = {(r.customer, r.priority): r for r in rows}
    normal = by[("Acme Corp", "normal")]
    assert (normal.tickets, normal.met, normal.breached, normal.at_risk, normal.open) == (4, 1, 1, 1, 1)
    assert normal.compliance_percent == 50.0
    assert normal.mean_time_to_resolve_seconds == 4 * 3600
    assert normal.paused_seconds == 1800
    urgent = by[("Acme Corp", "urgent")]
    assert (urgent.tickets, urgent.met, urgent.compliance_percent, urgent.mean_time_to_resolve_seconds) == (
        1,
        1,
        100.0,
        3600,
    )
    assert by[("Globex", "normal")].mean_time_to_resolve_seconds == 1800
    acme_viewer = Principal(user=None, api_key=None, role=Role.VIEWER, customer_ids=frozenset({acme.id}))
    only_acme = sla_report.compliance(
        start=at("2026-04-01T00:00:00"), end=at("2026-05-01T00:00:00"), principal=acme_viewer, now=NOW
    )
    assert {r.customer for r in only_acme} == {"Acme Corp"}


def test_api_json_and_csv_scoped_to_the_key(client, known, make_user):
    acme, _ = known
    owner = make_user(Role.ADMIN)
    key, prefix = new_key()
    db.session.add(
        ApiKey(
            name="r",
            prefix=prefix,
            key_hash=hash_api_key(key),
            scopes=["read"],
            customer_id=acme.id,
            created_by_id=owner.id,
        )
    )
    db.session.commit()
    headers = {"X-API-Key": key}
    query = {"from": "2026-04-01", "to": "2026-05-01"}
    body = client.get("/api/v1/reports/sla", query_string=query, headers=headers).json
    assert [(r["customer"], r["priority"], r["met"], r["breached"]) for r in body["rows"]] == [
        ("Acme Corp", "normal", 1, 1),
        ("Acme Corp", "urgent", 1, 0),
    ]
    response = client.get("/api/v1/reports/sla", query_string={**query, "format": "csv"}, headers=headers)
    assert response.mimetype == "text/csv"
    assert 'filename="sla-2026-04-01-2026-05-01.csv"' in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert table[0]["customer"] == "Acme Corp" and table[0]["tickets"] == "4"
    assert table[0]["mean_time_to_resolve_seconds"] == "14400" and table[0]["compliance_percent"] == "50.0"
    bad = client.get("/api/v1/reports/sla", query_string={"from": "April"}, headers=headers)
    assert bad.status_code == 400 and "from" in bad.json["error"]["fields"]
    reversed_period = client.get(
        "/api/v1/reports/sla", query_string={"from": "2026-05-01", "to": "2026-04-01"}, headers=headers
    )
    assert reversed_period.status_code == 400 and "from" in reversed_period.json["error"]["fields"]
    assert client.get("/api/v1/reports/sla").status_code == 401


def test_report_page_and_csv_download(client, known, login_as):
    login_as(Role.ADMIN)
    page = client.get("/reports/sla?from=2026-04-01&to=2026-05-01")
    assert page.status_code == 200
    assert "Acme Corp" in page.text and "Globex" in page.text and "50.0 %" in page.text and "4h 00m" in page.text
    download = client.get("/reports/sla.csv?from=2026-04-01&to=2026-05-01")
    assert download.mimetype == "text/csv" and download.text.startswith("customer_id,customer,priority")
    assert "Please check" not in client.get("/reports/sla?from=garbage").text
    assert "showing the last 30 days" in client.get("/reports/sla?from=garbage").text


def test_operator_sees_only_their_customers_in_the_report(client, known, login_as):
    acme, _ = known
    login_as(Role.OPERATOR, customers=[acme])
    page = client.get("/reports/sla?from=2026-04-01&to=2026-05-01")
    assert "Acme Corp" in page.text and "Globex" not in page.text


def test_csv_cells_cannot_start_a_formula(app, make_customer, make_ticket):
    evil = make_customer("=HYPERLINK(1)")
    make_ticket(customer=evil, created_at=at("2026-04-02T08:00:00"))
    rows = sla_report.compliance(start=at("2026-04-01T00:00:00"), end=at("2026-05-01T00:00:00"), now=NOW)
    assert "'=HYPERLINK(1)" in sla_report.to_csv(rows)


def test_a_breach_counts_even_after_the_deadline_moved(app, customer):
    from webapp.models import SlaPolicy
    from webapp.services.tickets import sla, tickets

    policy = SlaPolicy(customer_id=customer.id, priority=Priority.NORMAL, resolution_minutes=60)
    db.session.add(policy)
    ticket = tickets.create(customer=customer, title="x", now=at("2026-04-01T08:00:00"))
    sla.check_sla(now=at("2026-04-01T09:00:00"))
    policy.resolution_minutes = 600
    sla.recompute_customer(customer.id, Priority.NORMAL, reason="policy changed", now=at("2026-04-01T09:10:00"))
    tickets.change_status(ticket, TicketStatus.RESOLVED, now=at("2026-04-01T10:00:00"))
    db.session.commit()
    assert ticket.breached_at is None  # the new deadline was met...
    [row] = sla_report.compliance(start=at("2026-04-01T00:00:00"), end=at("2026-04-02T00:00:00"), now=NOW)
    assert (row.met, row.breached) == (0, 1)  # ...but the first one was missed


def test_resolved_after_its_deadline_counts_as_breached_on_the_report_and_the_dashboard(
    client, login_as, customer, make_ticket
):
    """One rule for both: a ticket resolved late missed its SLA even if no sweep ran to mark it."""
    now = utcnow()
    due = now - timedelta(days=2)
    make_ticket(customer=customer, status=TicketStatus.RESOLVED, created_at=due - timedelta(hours=4), due_at=due,
                resolved_at=due + timedelta(minutes=5))  # fmt: skip
    make_ticket(customer=customer, status=TicketStatus.RESOLVED, created_at=due - timedelta(hours=4), due_at=due,
                resolved_at=due - timedelta(minutes=5))  # fmt: skip
    [row] = sla_report.compliance(start=now - timedelta(days=7), end=now)
    assert (row.met, row.breached, row.compliance_percent) == (1, 1, 50.0)
    login_as(Role.ADMIN)
    dashboard = client.get("/").text
    assert "50% (1/2)" in dashboard.split("SLA compliance per customer (30 days)")[1]
