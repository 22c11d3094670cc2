"""On call, in a real browser (Playwright + Debian's Chromium): an admin creates a weekly rotation of three people
with an override, sees the timeline and "on call now", attaches the schedule to an escalation policy that a
routing rule gives to Alertmanager's alerts, then an Alertmanager alert fires and only the person on call is
paged (not the rest of the rotation, not the admins a critical alert paged before policies)."""

from __future__ import annotations

import json
from datetime import timedelta

from playwright.sync_api import expect

from tests.conftest import load_fixture
from tests.test_browser import SCREENSHOTS, browser, live_server, open_menu  # noqa: F401  (fixtures)
from tests.test_browser_ops import run_worker, sign_in
from webapp.extensions import db
from webapp.models import Event, Role, utcnow

PHONES = {"Ann": "+14155550121", "Ben": "+14155550122", "Cat": "+14155550123"}


def test_admin_puts_a_rotation_on_call_and_only_the_on_call_person_is_paged(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    make_user,
    twilio,
):
    make_user(Role.ADMIN, email="ada@example.com", name="Ada Admin", phone="+14155550101", customers=[])
    make_user(Role.ADMIN, email="zed@example.com", name="Zed Admin", phone="+14155550102", customers=[])
    for name, phone in PHONES.items():
        make_user(Role.OPERATOR, email=f"{name.lower()}@example.com", name=f"{name} Oncall", phone=phone)
    now = utcnow()
    base = live_server.url
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    SCREENSHOTS.mkdir(exist_ok=True)
    sign_in(page, base, "ada@example.com")

    # A weekly rotation of three people for the operations team, in UTC, started three weeks ago.
    open_menu(page, "People", "On-call schedules")
    form = page.locator("form").filter(has=page.get_by_role("button", name="Create schedule"))
    form.get_by_label("Name", exact=True).fill("Ops weekly")
    form.get_by_label("Customer").select_option(label="— operations team (every customer) —")
    form.get_by_label("Time zone").select_option("UTC")
    form.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_role("heading", name="Ops weekly")).to_be_visible()
    layer = page.locator("#new-layer")
    layer.get_by_label("Layer name").fill("Weekly")
    layer.get_by_label("Rotation", exact=True).select_option("weekly")
    layer.get_by_label("Hand-off time").fill("09:00")
    layer.get_by_label("First hand-off on").fill((now - timedelta(days=21)).date().isoformat())
    layer.get_by_label("Members, in rotation order").fill("ann@example.com, ben@example.com, cat@example.com")
    layer.get_by_role("button", name="Add layer").click()
    expect(page.locator("#layers")).to_contain_text("Ann Oncall")

    # Cat covers the next three hours, whoever's week it is.
    override = page.locator("#new-override")
    override.get_by_label("Who covers").select_option(label="Cat Oncall")
    override.get_by_label("From").fill((now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    override.get_by_label("Until").fill((now + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    override.get_by_label("Note").fill("Ben at the dentist")
    override.get_by_role("button", name="Add override").click()
    anyway = page.locator("#new-override").get_by_label("Create it anyway (I have read the warnings)")
    if anyway.count():  # a conflict warning (the override covers someone's shift): add it all the same
        anyway.check()
        page.locator("#new-override").get_by_role("button", name="Add override").click()
    expect(page.locator("#overrides")).to_contain_text("Cat Oncall")
    expect(page.locator("#on-call-now")).to_contain_text("Cat Oncall")
    expect(page.locator("#on-call-now")).to_contain_text("override")
    timeline = page.get_by_role("heading", name="Timeline").locator("xpath=ancestor::section")
    expect(timeline).to_contain_text("Cat Oncall")
    page.screenshot(path=SCREENSHOTS / "oncall-schedule.png", full_page=True)

    # An escalation policy whose first step is the schedule's on-call; a rule gives it Alertmanager's alerts.
    open_menu(page, "Configuration", "Escalation policies")
    create = page.locator("#policy-form")
    create.get_by_label("Customer").select_option(label="(all customers)")
    create.get_by_label("Name", exact=True).fill("Ops on-call")
    create.get_by_role("button", name="Create policy").click()
    expect(page.get_by_role("heading", name="Ops on-call")).to_be_visible()
    step = page.locator("#step-form")
    step.get_by_label("On-call of schedule").select_option(label="Ops weekly")
    step.get_by_label("Wait before the next step (minutes)").fill("15")
    step.get_by_role("button", name="Add step").click()
    expect(page.locator("#steps")).to_contain_text("the on-call of schedule “Ops weekly”")
    page.get_by_role("link", name="← Escalation policies").click()
    rule = page.locator("#rule-form")
    rule.get_by_label("Customer").select_option(label="(all customers)")
    rule.get_by_label("Source (empty: any)").fill("alertmanager")
    rule.get_by_label("Escalation policy").select_option(label="Ops on-call")
    rule.get_by_role("button", name="Add rule").click()
    expect(page.locator("#escalation-rules")).to_contain_text("Ops on-call")
    page.screenshot(path=SCREENSHOTS / "escalation-policies.png", full_page=True)

    # Alertmanager fires a critical alert: Cat (on call, by the override) is paged, and nobody else.
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    sent = page.request.post(
        base + "/api/v1/webhooks/alertmanager",
        data=json.dumps(payload),
        headers={"Authorization": "Bearer test-alert-token", "Content-Type": "application/json"},
    )
    assert sent.status == 200, sent.text()
    run_worker(live_server)
    assert sorted(m["To"] for m in twilio.received) == [PHONES["Cat"]]

    open_menu(page, "Incidents", "Incidents")
    row = page.locator("tr.incident-row").filter(has_text="DiskFull")
    expect(row.locator(".paged")).to_have_text("Cat Oncall")
    with live_server.app_context():
        assert db.session.scalar(db.select(db.func.count(Event.id)).where(Event.source == "escalation")) == 0
