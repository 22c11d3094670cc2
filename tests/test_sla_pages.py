"""The SLA policy pages: admins change policies, business hours and holidays; others read; CSRF."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import AuditLog, BusinessCalendar, Holiday, Priority, Role, SlaPolicy
from webapp.services.tickets import tickets


def test_admin_sets_a_policy_and_open_tickets_get_new_deadlines(client, customer, login_as):
    login_as(Role.ADMIN, name="Ada")
    ticket = tickets.create(customer=customer, title="x", priority=Priority.HIGH)
    db.session.commit()
    url = f"/sla/customers/{customer.id}/policies/high"
    bad = client.post(url, data={"resolution_minutes": "30", "warning_minutes": "60", "escalation_limit": "2"})
    assert bad.status_code == 422 and "before the deadline" in bad.text
    response = client.post(
        url,
        data={
            "resolution_minutes": "120",
            "warning_minutes": "30",
            "escalation_limit": "2",
            "escalation_minutes": "15",
        },
    )
    assert response.status_code == 302
    assert "1 open ticket deadline(s) recomputed" in client.get(response.headers["Location"]).text
    db.session.expire_all()
    policy = db.session.scalar(db.select(SlaPolicy))
    assert (policy.priority, policy.resolution_minutes, policy.escalation_minutes) == (Priority.HIGH, 120, 15)
    assert ticket.due_at is not None
    assert any("SLA policy for high priority changed by Ada" in e.body for e in ticket.timeline)
    assert db.session.scalar(db.select(AuditLog.action)) == "sla_policy.create"


def test_business_hours_and_holidays_are_validated_and_saved(client, customer, login_as):
    login_as(Role.ADMIN)
    url = f"/sla/customers/{customer.id}/calendar"
    bad = client.post(url, data={"timezone": "Mars/Olympus", "working_days": ["0"], "start": "9", "end": "08:00"})
    assert bad.status_code == 422
    assert "Unknown time zone" in bad.text and "Use HH:MM" in bad.text
    assert db.session.scalar(db.select(BusinessCalendar)) is None
    ok = client.post(
        url, data={"timezone": "Europe/Berlin", "working_days": ["0", "1", "2"], "start": "08:30", "end": "16:00"}
    )
    assert ok.status_code == 302
    calendar = db.session.scalar(db.select(BusinessCalendar))
    assert (calendar.timezone, calendar.working_days, calendar.start_minute, calendar.end_minute) == (
        "Europe/Berlin",
        [0, 1, 2],
        510,
        960,
    )
    holidays = f"/sla/customers/{customer.id}/holidays"
    assert client.post(holidays, data={"day": "2026-12-25", "name": "Christmas"}).status_code == 302
    assert client.post(holidays, data={"day": "2026-12-25", "name": "Again"}).status_code == 422
    assert client.post(holidays, data={"day": "not a date", "name": "x"}).status_code == 422
    page = client.get(f"/sla/customers/{customer.id}")
    assert "Christmas" in page.text and "Monday, Tuesday, Wednesday" in page.text
    assert [h.name for h in db.session.scalars(db.select(Holiday))] == ["Christmas"]


def test_operators_read_but_cannot_change_policies(client, customer, make_customer, login_as):
    other = make_customer("Globex")
    login_as(Role.OPERATOR, customers=[customer])
    page = client.get(f"/sla/customers/{customer.id}")
    assert page.status_code == 200 and "Save business hours" not in page.text
    assert client.get(f"/sla/customers/{other.id}").status_code == 404
    assert "Globex" not in client.get("/sla").text
    refused = client.post(f"/sla/customers/{customer.id}/policies/high", data={"resolution_minutes": "60"})
    assert refused.status_code == 403
    assert client.post(f"/sla/customers/{customer.id}/holidays", data={"day": "2026-12-25"}).status_code == 403
    assert db.session.scalar(db.select(SlaPolicy)) is None


def test_pages_need_login(client, customer):
    for url in ("/sla", f"/sla/customers/{customer.id}", "/reports/sla", "/reports/sla.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_policy_form_needs_its_csrf_token(make_app, customer, make_user):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    admin = make_user(Role.ADMIN)
    with app.app_context():
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token})
        url = f"/sla/customers/{customer.id}/policies/urgent"
        data = {"resolution_minutes": "60", "warning_minutes": "10", "escalation_limit": "2"}
        assert client.post(url, data=data).status_code == 400
        assert client.post(f"/sla/customers/{customer.id}/holidays", data={"day": "2026-12-25"}).status_code == 400
        assert db.session.scalar(db.select(SlaPolicy)) is None
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', client.get(url).text).group(1)
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 302
        assert db.session.scalar(db.select(SlaPolicy.resolution_minutes)) == 60
