"""An incident's life in a real browser (Playwright + Debian's Chromium): an operator paged by an alert opens
the console, opens the incident, sees who was paged and why a colleague was not, acknowledges it; the worker
then sends no escalation step and tells the other paged operator; the sender's resolution resolves the incident
and its ticket.

The alert comes from a generic sender of the customer with tickets on (a signed webhook): OpsRelay's
Alertmanager endpoint takes no customer, so an Alertmanager alert pages admins only and opens no ticket."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from tests import test_webhooks_generic as generic_hook
from tests.test_browser import SCREENSHOTS, browser, live_server, open_menu  # noqa: F401  (fixtures)
from tests.test_browser_ops import run_worker, sign_in
from webapp.extensions import db
from webapp.models import Event, Incident, Priority, Role, SlaPolicy, Ticket, utcnow
from webapp.services.events import escalation
from webapp.services.integrations import webhook_sources

ALERT = {
    "title": "Checkout API down",
    "description": "5xx on every request since 09:12",
    "severity": "critical",
    "event_type": "alert",
    "dedup_key": "checkout-api-down",
    "labels": {"service": "checkout", "instance": "api-3"},
    "create_ticket": True,
}


class Sender:
    """generic_hook.post's client, posting from the browser's request context to the live server."""

    def __init__(self, page, base: str):
        self.page, self.base = page, base

    def post(self, url, *, data, headers, content_type):
        response = self.page.request.post(self.base + url, data=data, headers={**headers, "Content-Type": content_type})
        assert response.status in (200, 201), response.text()
        return response


def test_operator_acknowledges_an_incident_in_the_browser_and_it_stops_escalating(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    make_user,
    customer,
    twilio,
):
    db.session.add(
        SlaPolicy(
            customer_id=customer.id,
            priority=Priority.URGENT,
            resolution_minutes=60,
            escalation_minutes=30,
            escalation_limit=2,
        )
    )
    webhook_sources.create(
        name="automation", kind="generic", customer=customer, secret=generic_hook.SECRET, create_tickets=True
    )
    db.session.commit()
    make_user(Role.OPERATOR, email="olga@example.com", name="Olga Operator", phone="+14155550101")
    make_user(Role.OPERATOR, email="paul@example.com", name="Paul Paged", phone="+14155550102")
    make_user(Role.VIEWER, email="vera@example.com", name="Vera Viewer")
    base = live_server.url
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    SCREENSHOTS.mkdir(exist_ok=True)

    sender = Sender(page, base)
    generic_hook.post(sender, ALERT)
    run_worker(live_server)
    paged_numbers = sorted(m["To"] for m in twilio.received)
    assert paged_numbers == ["+14155550101", "+14155550102"]  # both operators paged by SMS (critical)

    sign_in(page, base, "olga@example.com")
    open_menu(page, "Incidents", "Incidents")
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible()
    row = page.locator("tr.incident-row").filter(has_text="Checkout API down")
    expect(row).to_contain_text("instance=api-3")
    expect(row).to_contain_text("triggered")
    expect(row.locator(".paged")).to_have_text("Olga Operator, Paul Paged")
    page.screenshot(path=SCREENSHOTS / "incidents.png", full_page=True)

    row.get_by_role("link", name="Checkout API down").click()
    expect(page.locator("#incident-paged .paged")).to_have_text("Olga Operator, Paul Paged")
    expect(page.locator("#incident-timeline")).to_contain_text("Triggered by generic")
    page.get_by_label("Why was this person not notified?").select_option(label="Vera Viewer")
    page.get_by_role("button", name="Explain").click()
    answer = page.locator("#explain-answer")
    expect(answer).to_contain_text("Vera Viewer")
    expect(answer).to_contain_text("sms:")
    page.screenshot(path=SCREENSHOTS / "incident-why-not.png", full_page=True)

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("acknowledged: escalation stopped.")).to_be_visible()
    expect(page.locator("#incident-fields .acked")).to_contain_text("Olga Operator")
    expect(page.locator("#incident-timeline")).to_contain_text("Acknowledged by Olga Operator (web)")

    run_worker(live_server)  # the notices of the acknowledgement go out
    with live_server.app_context():
        steps = escalation.escalate(now=utcnow() + timedelta(hours=3))
        db.session.commit()
        assert steps.escalated == []
        assert db.session.scalar(db.select(db.func.count(Event.id)).where(Event.source == "escalation")) == 0
    told = [m["Body"] for m in twilio.received if m["To"] == "+14155550102"]
    assert any("Olga Operator acknowledged" in body for body in told), told
    assert not any("acknowledged" in m["Body"] for m in twilio.received if m["To"] == "+14155550101")

    generic_hook.post(sender, {**ALERT, "status": "resolved"})
    run_worker(live_server)
    page.reload()
    expect(page.locator("h1 .incident-state")).to_have_text("resolved")
    expect(page.locator("#incident-fields .ticket")).to_contain_text("resolved")
    page.screenshot(path=SCREENSHOTS / "incident-resolved.png", full_page=True)
    with live_server.app_context():
        incident = db.session.scalars(db.select(Incident)).one()
        assert incident.state == "resolved"
        assert db.session.get(Ticket, incident.ticket_id).status == "resolved"
