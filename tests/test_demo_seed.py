"""`flask demo seed`: an empty database becomes a living system; a populated one is refused without --force."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import expect

from tests.test_browser import SCREENSHOTS, browser, live_server  # noqa: F401  (fixtures)
from webapp.extensions import db
from webapp.models import (
    Customer,
    Event,
    Heartbeat,
    Incident,
    IncidentState,
    Notification,
    NotificationStatus,
    Role,
    Ticket,
    User,
)
from webapp.services.demo.seed import PASSWORD


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_demo_seed_fills_an_empty_database_and_refuses_a_second_time(runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "Seeded 3 customers, 6 users, 73 events" in result.output and PASSWORD in result.output
    assert {u.role for u in db.session.scalars(sa.select(User))} == set(Role)
    assert all(u.phone_numbers for u in db.session.scalars(sa.select(User)))
    statuses = set(db.session.scalars(sa.select(Notification.status).distinct()))
    assert statuses == set(NotificationStatus) - {NotificationStatus.SENDING}
    assert count(Ticket, Ticket.breached_at.is_not(None)) == 3 and count(Ticket, Ticket.warned_at.is_not(None)) == 6
    assert count(Heartbeat) == 6
    open_incidents = count(Incident, Incident.open_key.is_not(None))  # the console and the incidents page
    acked = count(Incident, Incident.state == IncidentState.ACKNOWLEDGED)
    assert open_incidents > 10 and 0 < acked < open_incidents and count(Incident, Incident.resolved_at.is_not(None)) > 0
    linked = count(Event, Event.incident_id.is_not(None))
    assert linked == count(Incident)  # one event each: the demo's alerts are all first firings

    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code != 0 and "already has customers, events or tickets; add --force" in again.output
    assert count(Customer) == 3
    forced = runner.invoke(args=["demo", "seed", "--force"])
    assert forced.exit_code == 0, forced.output
    assert count(Customer) == 6 and count(Event) == 146


def test_the_seeded_dashboard_shows_charts_tickets_and_deliveries(live_server, browser, runner):  # noqa: F811
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    SCREENSHOTS.mkdir(exist_ok=True)
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill("alice@demo.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.goto(live_server.url + "/?range=7d")
    charts = page.locator("section.charts svg.chart")
    expect(charts).to_have_count(2)
    assert page.locator("section.charts svg.chart rect").count() > 20  # bars across the week
    assert page.locator("section.compliance svg.chart rect").count() >= 3  # a row per customer
    expect(page.get_by_text("Core switch config backup missing").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "demo-dashboard.png"), full_page=True)
    page.goto(live_server.url + "/heartbeats")
    expect(page.get_by_text("nightly-backup").first).to_be_visible()
