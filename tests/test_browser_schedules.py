"""An operator builds an on-call schedule in a real browser (Chromium): a weekly rotation of three, an override
that first shows its conflict warning, then the timeline and "on call now"; the page breaks no
Content-Security-Policy rule (the timeline is inline SVG, no script) and fits a phone."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.test_browser import SCREENSHOTS, browser, live_server, open_menu  # noqa: F401  (fixtures)
from webapp.models import utcnow


def test_an_operator_builds_a_rotation_with_an_override(live_server, browser, make_user, customer):  # noqa: F811
    operator = make_user("operator", email="olga@example.com", name="Olga Operator")
    alice = make_user("operator", email="alice@example.com", name="Alice Archer")
    bob = make_user("operator", email="bob@example.com", name="Bob Baker")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    # (the warning answer is a 409, which Chromium logs as a failed load: that one is by design)
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" and "status of 409" not in msg.text else None,
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(operator.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    open_menu(page, "People", "On-call schedules")
    expect(page.get_by_role("heading", name="On-call schedules")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Payments primary")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_role("heading", name="Payments primary")).to_be_visible()

    paris = utcnow().astimezone(ZoneInfo("Europe/Paris")) - timedelta(hours=9)
    this_monday = paris.date() - timedelta(days=paris.weekday())  # the turn under way started then, 09:00
    layer = page.locator("#new-layer")
    layer.get_by_label("Layer name").fill("Weekly")
    layer.get_by_label("Rotation", exact=True).select_option("weekly")
    layer.get_by_label("Hand-off time").fill("09:00")
    layer.get_by_label("First hand-off on").fill(this_monday.isoformat())
    layer.get_by_label("Members, in rotation order").fill(f"{alice.email}, {bob.email}, {operator.email}")
    layer.get_by_role("button", name="Add layer").click()
    expect(page.locator("#on-call-now")).to_contain_text("Alice Archer")
    expect(page.locator("#on-call-next")).to_contain_text("Bob Baker")

    # Olga covers tomorrow night for Alice; then Bob tries the same hours: a warning first
    night = paris.date() + timedelta(days=1)
    override = page.locator("#new-override")
    override.get_by_label("Who covers").select_option(label="Olga Operator")
    override.get_by_label("From").fill(f"{night}T20:00")
    override.get_by_label("Until").fill(f"{night + timedelta(days=1)}T08:00")
    override.get_by_role("button", name="Add override").click()
    expect(page.locator("#overrides")).to_contain_text("Olga Operator")
    override = page.locator("#new-override")
    override.get_by_label("Who covers").select_option(label="Bob Baker")
    override.get_by_label("From").fill(f"{night}T22:00")
    override.get_by_label("Until").fill(f"{night + timedelta(days=1)}T06:00")
    override.get_by_role("button", name="Add override").click()
    expect(page.locator(".override-warnings")).to_contain_text("overlaps the override of Olga Operator")
    page.locator("#new-override").get_by_label("Create it anyway").check()
    page.locator("#new-override").get_by_role("button", name="Add override").click()
    expect(page.locator("#overrides tbody tr")).to_have_count(2)

    timeline = page.locator("#timeline")
    expect(timeline.locator("g.shift").first).to_be_visible()
    assert timeline.locator("g.shift title").filter(has_text="Bob Baker").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "schedule-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    page.screenshot(path=str(SCREENSHOTS / "schedule-phone.png"), full_page=True)
    assert errors == []
