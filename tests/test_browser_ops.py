"""The operations pages in a real browser (Playwright + Debian's Chromium): tickets on the dashboard,
a test SMS watched until sent, its delivery-log explanation, and a test email through SMTP."""

from __future__ import annotations

import re
import socket
import threading
from datetime import timedelta
from email import message_from_bytes

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.test_browser import SCREENSHOTS, browser, live_server, open_menu  # noqa: F401  (fixtures)
from webapp.extensions import db
from webapp.models import Notification, NotificationStatus, utcnow
from webapp.queue import EmbeddedWorker, get_queue


def run_worker(app) -> None:
    """What a worker process would do: take the queued jobs now."""
    get_queue(app).worker(EmbeddedWorker).work(burst=True, with_scheduler=True, logging_level="WARNING")


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_operator_creates_a_ticket_sends_a_test_sms_and_reads_the_log(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    make_user,
    make_ticket,
    customer,
    twilio,
):
    make_user("operator", email="olga@example.com", name="Olga Operator")
    due_soon = make_ticket(customer=customer, title="Disk full on db-1", due_at=utcnow() + timedelta(hours=2))
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    SCREENSHOTS.mkdir(exist_ok=True)
    sign_in(page, base, "olga@example.com")

    # A ticket, created in the form, shows on the dashboard.
    open_menu(page, "Tickets", "Tickets")
    page.get_by_role("link", name="New ticket").click()
    page.get_by_label("Title").fill("Backups failing on db-2")
    page.get_by_label("Priority").select_option("high")
    page.get_by_role("button", name="Create ticket").click()
    expect(page.get_by_text("created.")).to_be_visible()
    expect(page.get_by_text("Ticket created from the admin pages")).to_be_visible()
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("Acknowledged by Olga Operator (web)")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "ticket.png", full_page=True)
    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.locator(".newest-open").get_by_text("Backups failing on db-2")).to_be_visible()

    # A test SMS: an invalid number is refused, a national one is normalised and reaches Twilio.
    open_menu(page, "Deliveries", "Test sends")
    page.get_by_label("To", exact=True).fill("12345")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("is not a valid phone number")).to_be_visible()
    page.get_by_label("To", exact=True).fill("(415) 555-0101")
    page.get_by_role("button", name="Send test").click()
    status = page.locator(".watch-value")
    expect(status).to_have_text("queued")
    run_worker(live_server)
    expect(status).to_have_text("sent", timeout=10_000)  # polled by static/js, no reload
    expect(page.locator('.watch-steps li[data-step="sent"]')).to_have_class("done")
    assert [m["To"] for m in twilio.received] == ["+14155550101"]
    page.screenshot(path=SCREENSHOTS / "test-send.png", full_page=True)

    # The delivery log has the row, and its page explains it.
    page.get_by_role("link", name="Open in the delivery log").click()
    expect(page.locator(".explanation")).to_contain_text(
        "as a test message (no event), to …0101 by sms, sent by Olga Operator"
    )
    expect(page.locator(".explanation")).to_contain_text("(provider id SM")
    page.screenshot(path=SCREENSHOTS / "delivery-detail.png", full_page=True)
    page.get_by_role("link", name="← Delivery log").click()
    page.get_by_label("Status").select_option("sent")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="sms", exact=True)).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "delivery-log.png", full_page=True)

    # A ticket with a deadline counts down live (static/js, allowed by the Content-Security-Policy).
    page.goto(f"{base}/tickets/{due_soon.id}")
    expect(page.locator(".sla-countdown")).to_contain_text(re.compile(r"^1h 5\dm \d+s left$"))

    # The dashboard's charts now have a bar for it, drawn on the server as SVG.
    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.locator("svg.chart").first).to_be_visible()
    # the test SMS and the ticket's in-app (web) notification, both sent this hour
    with live_server.app_context():
        sent = db.session.scalar(
            sa.select(sa.func.count()).select_from(Notification).where(Notification.status == NotificationStatus.SENT)
        )
    assert sent >= 1
    expect(page.locator("svg.chart rect title").first).to_contain_text(f"{sent} sent")
    page.screenshot(path=SCREENSHOTS / "dashboard-ops.png", full_page=True)


class Inbox:
    def __init__(self):
        self.messages = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        self.arrived.set()
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


def test_operator_configures_smtp_and_a_test_email_arrives(live_server, browser, make_user, smtp_server):  # noqa: F811
    make_user("operator", email="olga@example.com", name="Olga Operator")
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    SCREENSHOTS.mkdir(exist_ok=True)
    sign_in(page, base, "olga@example.com")

    open_menu(page, "Configuration", "SMTP")
    page.get_by_role("link", name="New SMTP settings").click()
    page.get_by_label("Host").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(smtp_server.port))
    page.get_by_label("Security").select_option("none")
    page.get_by_label("Password").fill("smtp-secret")
    page.get_by_label("From address").fill("alerts@acme.example")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("A password is stored (encrypted); it is never shown.")).to_be_visible()
    assert "smtp-secret" not in page.content()

    page.get_by_label("Send to").fill("oncall@acme.example")
    page.get_by_role("button", name="Send test email").click()
    status = page.locator(".watch-value")
    expect(status).to_have_text("queued")
    run_worker(live_server)
    page.screenshot(path=SCREENSHOTS / "smtp-test.png", full_page=True)
    expect(status).to_have_text("sent", timeout=10_000)
    assert smtp_server.arrived.wait(5)
    recipients, message = smtp_server.messages[0]
    assert recipients == ["oncall@acme.example"] and message["Subject"] == "OpsRelay test email"
