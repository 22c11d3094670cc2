"""The routing preview in a real browser (Playwright + Debian's Chromium): an Alertmanager body pasted, the admin
who would be paged shown with the channel and the decision, and nothing stored."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import load_fixture
from tests.test_browser import SCREENSHOTS, browser, live_server, open_menu  # noqa: F401  (fixtures)
from tests.test_browser_ops import sign_in
from webapp.extensions import db
from webapp.models import Event, Notification


def test_operator_runs_a_routing_preview_of_an_alertmanager_payload(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    make_user,
    customer,
    twilio,
):
    make_user("admin", name="Ada Admin", phone="+14155550101", customers=[])
    make_user("operator", email="olga@example.com", name="Olga Operator", customers=[customer])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    SCREENSHOTS.mkdir(exist_ok=True)
    sign_in(page, live_server.url, "olga@example.com")

    open_menu(page, "Deliveries", "Routing preview")
    page.get_by_label("Source").select_option("alertmanager")
    page.get_by_label("Webhook body (JSON)").fill('{"alerts": [')
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".field-error").filter(has_text="Not JSON")).to_be_visible()

    page.get_by_label("Webhook body (JSON)").fill(load_fixture("webhooks/alertmanager_firing.json").decode())
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("This event names no customer: pick one of yours.")).to_be_visible()
    page.get_by_label("Customer").select_option(label=customer.name)
    page.get_by_role("button", name="Preview").click()

    ada = page.locator("#routing-decisions tbody tr").filter(has_text="Ada Admin").filter(has_text="sms")
    expect(ada).to_have_count(1)
    expect(ada).to_contain_text("pending")
    expect(ada).to_contain_text("…0101")
    expect(page.locator("#routing-preview-result")).to_contain_text("DiskFull")
    page.screenshot(path=SCREENSHOTS / "routing-preview.png", full_page=True)

    db.session.expire_all()
    assert db.session.query(Event).count() == 0 and db.session.query(Notification).count() == 0
    assert twilio.received == []
    page.close()
