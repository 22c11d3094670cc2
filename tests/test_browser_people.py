"""People and content pages in a real browser (Debian's Chromium): customers, users with phone
numbers, preferences, and a template edited with its live preview."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.test_browser import SCREENSHOTS, browser, live_server, open_menu  # noqa: F401  (fixtures)
from webapp.extensions import db
from webapp.models import Customer, MessageTemplate, NotificationPreference, PhoneNumber, Severity, User


def _sign_in(page, url: str, email: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_admin_creates_customer_and_user_with_phone_then_sets_preferences_and_a_template(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    make_user,
):
    make_user("admin", email="ada@example.com", name="Ada Admin", customers=[])
    SCREENSHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    url = live_server.url
    _sign_in(page, url, "ada@example.com")

    # A customer.
    open_menu(page, "People", "Customers")
    page.get_by_role("link", name="New customer").click()
    page.get_by_label("Name").fill("Globex")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Create customer").click()
    expect(page.get_by_text("Customer Globex created.")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "customer.png", full_page=True)

    # A user of that customer, with a password.
    open_menu(page, "People", "Users")
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Email").fill("olga@example.com")
    page.get_by_label("Name").fill("Olga Operator")
    page.get_by_label("Role").select_option("operator")
    page.get_by_label("Globex").check()
    page.get_by_label("Set a password now").check()
    page.get_by_label("Password", exact=True).fill("a-long-password-1")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", name="Phone numbers of Olga Operator")).to_be_visible()

    # An invalid number is refused next to the field, keeping what was typed; a national one is stored in E.164.
    page.get_by_label("Number").fill("12345")
    page.get_by_role("button", name="Add number").click()
    expect(page.locator(".field-number .field-error")).to_contain_text("is not a valid phone number")
    expect(page.get_by_label("Number")).to_have_value("12345")
    page.screenshot(path=SCREENSHOTS / "phone-invalid.png", full_page=True)
    page.get_by_label("Number").fill("(415) 555-0123")
    page.get_by_label("Label", exact=True).fill("On-call mobile")
    page.get_by_role("button", name="Add number").click()
    expect(page.get_by_role("cell", name="+14155550123")).to_be_visible()
    expect(page.get_by_text("primary", exact=True)).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "phones.png", full_page=True)

    # My preferences.
    page.get_by_role("button", name=re.compile("Ada Admin")).click()
    page.get_by_role("link", name="My preferences").click()
    page.get_by_label("Minimum severity by SMS").select_option("high")
    page.get_by_label("Quiet hours from").fill("22:00")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.locator(".field-quiet_hours_start .field-error")).to_have_text(
        "Give both ends of the quiet hours, or neither."
    )
    expect(page.get_by_label("Minimum severity by SMS")).to_have_value("high")  # kept
    page.get_by_label("Quiet hours until").fill("07:00")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Preferences saved.")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "preferences.png", full_page=True)

    # A template, previewed as it is typed.
    open_menu(page, "Configuration", "Templates")
    page.get_by_role("row").filter(has_text="sms").get_by_role("link", name="alert").first.click()
    body = page.get_by_label("Text (SMS and plain-text email)")
    body.fill("{{ severity|upper }}: {{ alertname }} on {{ instance }}")
    expect(page.locator("#preview-text")).to_have_text("CRITICAL: DiskFull on db-1:9100")
    expect(page.locator("#preview-sms")).to_have_text("GSM-7 · 31 characters · 1 segment")
    body.fill("🔥 {{ alertname }} " + "x" * 80)
    expect(page.locator("#preview-sms")).to_contain_text("UCS-2")
    expect(page.locator("#preview-sms")).to_contain_text("2 segments")
    body.fill("{{ alertname")
    expect(page.locator("#preview-errors")).to_contain_text("template error")
    page.screenshot(path=SCREENSHOTS / "template-error.png", full_page=True)
    body.fill("{{ severity|upper }}: {{ alertname }} on {{ instance }}")
    expect(page.locator("#preview-errors")).to_have_text("")
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_text("Template saved.")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "template.png", full_page=True)

    db.session.expire_all()
    assert db.session.scalar(sa.select(Customer.timezone).where(Customer.name == "Globex")) == "Europe/Berlin"
    olga = db.session.scalar(sa.select(User).where(User.email == "olga@example.com"))
    assert [c.name for c in olga.customers] == ["Globex"]
    assert db.session.scalar(sa.select(PhoneNumber.number).where(PhoneNumber.user_id == olga.id)) == "+14155550123"
    ada = db.session.scalar(sa.select(User).where(User.email == "ada@example.com"))
    pref = db.session.scalar(sa.select(NotificationPreference).where(NotificationPreference.user_id == ada.id))
    assert pref.min_severity_sms == Severity.HIGH
    assert (
        db.session.scalar(
            sa.select(MessageTemplate.body_text).where(
                MessageTemplate.customer_id.is_(None), MessageTemplate.channel == "sms"
            )
        )
        == "{{ severity|upper }}: {{ alertname }} on {{ instance }}"
    )
