"""Every admin page in a real browser (Playwright + Debian's Chromium), as an admin, an operator and a viewer,
on a phone (390×844) and a desktop (1280×800), with one row of everything (tests/admin_world.py).

For each page: the status is 200 (or the role's 403/404), the console logs no error (Content-Security-Policy
violations included), nothing is wider than the window, and on a detail page the primary action is on the
first screen of a phone. A screenshot of each is saved in tests/screenshots/walk/ (git-ignored).

Generic like tests/test_route_walk.py: a page registered anywhere is walked as soon as it exists."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.admin_world import build_world
from tests.conftest import PASSWORD
from tests.test_browser import SCREENSHOTS, browser, live_server  # noqa: F401  (fixtures)
from tests.test_route_walk import _fill, _get_rules
from webapp.extensions import db
from webapp.models import Channel, MessageTemplate, Ticket, TimelineEntry, utcnow

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
NOT_PAGES = {"admin.report_sla_csv", "admin.report_sms_spend_csv", "admin.delivery_status"}  # downloads, a JSON poll
# Detail pages and the button that must be on a phone's first screen (for those whose role may use it).
PRIMARY_ACTIONS = {
    "admin.ticket_detail": "Acknowledge",
    "admin.incident_detail": "Acknowledge",
}
WALK = SCREENSHOTS / "walk"


def _pages(app) -> list:
    return [r for r in _get_rules(app) if r.endpoint.startswith("admin.") and r.endpoint not in NOT_PAGES]


def _allowed(role: str) -> set[int]:
    return {200} if role == "admin" else {200, 403, 404}


def _check_page(page, url: str, role: str, viewport: str, endpoint: str) -> list[str]:
    errors: list[str] = []

    def on_console(msg):
        if msg.type == "error":
            text = msg.text
            if "Failed to load resource" in text and msg.location.get("url", "") == page.url:
                return  # the page's own 403/404, checked below
            errors.append(f"console: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"script: {exc}"))
    try:
        response = page.goto(url, wait_until="load")
        status = response.status if response else 0
        problems = []
        if status not in _allowed(role):
            problems.append(f"status {status}")
        if status == 200:
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if width[0] > width[1]:
                wide = page.evaluate(
                    """() => [...document.querySelectorAll('body *')]
                        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                        .slice(0, 3).map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.'))"""
                )
                problems.append(f"{width[0]} px wide in {width[1]} ({', '.join(wide)})")
            if viewport == "desktop":  # the menu on one line, Sign out in sight
                bar = page.evaluate(
                    """() => { const nav = document.querySelector('nav.navbar');
                               const out = [...document.querySelectorAll('nav.navbar button')]
                                   .find(b => b.textContent.trim() === 'Sign out');
                               return [nav.offsetHeight, out ? out.getBoundingClientRect().right : null]; }"""
                )
                if bar[0] > 64 or bar[1] is None or bar[1] > VIEWPORTS["desktop"]["width"]:
                    problems.append(f"menu {bar[0]} px high, Sign out at {bar[1]}")
            action = PRIMARY_ACTIONS.get(endpoint)
            if action and viewport == "phone" and role != "viewer":
                button = page.get_by_role("button", name=action, exact=True).first
                box = button.bounding_box() if button.count() else None
                if box is None or box["y"] + box["height"] > VIEWPORTS["phone"]["height"]:
                    problems.append(f"{action!r} not on the first screen ({box and round(box['y'])})")
        page.wait_for_timeout(30)  # late console messages (CSP reports arrive asynchronously)
        name = endpoint.removeprefix("admin.")
        page.screenshot(path=WALK / f"{role}-{viewport}" / f"{name}.png")
        return [f"{role} {viewport} {url}: {p}" for p in problems + errors]
    finally:
        page.remove_listener("console", on_console)


@pytest.fixture
def world(app, customer, make_customer, make_user, make_ticket):
    world = build_world(home=customer, make_customer=make_customer, make_user=make_user, make_ticket=make_ticket)
    # A ticket with a long history: its SLA state and actions must still be at the top on a phone.
    ticket_id = world.ids["ticket"]
    db.session.add_all(
        TimelineEntry(ticket_id=ticket_id, kind="comment", body=f"Looked again at db-1, note {n}: still full.")
        for n in range(40)
    )
    db.session.execute(sa.update(Ticket).where(Ticket.id == ticket_id).values(due_at=utcnow() + timedelta(hours=2)))
    db.session.commit()
    return world


def test_every_page_works_for_every_role_on_a_phone_and_a_desktop(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    world,
    make_user,
):
    users = {
        "admin": make_user("admin", email="walk-admin@example.com", customers=[]),
        "operator": make_user("operator", email="walk-operator@example.com", customers=[world.home, world.other]),
        "viewer": make_user("viewer", email="walk-viewer@example.com", customers=[world.home]),
    }
    urls = [(rule.endpoint, _fill(rule, world.ids)) for rule in _pages(live_server)]
    base = live_server.url
    problems: list[str] = []
    started = time.monotonic()
    for role, user in users.items():
        state = None
        for viewport, size in VIEWPORTS.items():
            (WALK / f"{role}-{viewport}").mkdir(parents=True, exist_ok=True)
            context = browser.new_context(viewport=size, storage_state=state)
            page = context.new_page()
            if state is None:  # one sign-in per role, its cookie reused for the other viewport
                page.goto(base + "/login")
                page.get_by_label("Email").fill(user.email)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(base + "/")
                state = context.storage_state()
            if viewport == "phone":  # the menu button shows its icon and opens the whole menu
                page.goto(base + "/")
                toggler = page.locator(".navbar-toggler")
                expect(toggler.locator(".navbar-toggler-icon")).to_have_css("background-image", re.compile("^url"))
                toggler.click()
                expect(page.locator("#main-menu")).to_have_class(re.compile(r"\bshow\b"))  # opened, not opening
                expect(page.get_by_role("button", name="Sign out")).to_be_visible()
                expect(page.locator("nav.navbar").get_by_role("link", name="Incidents", exact=True)).to_be_visible()
                page.screenshot(path=WALK / f"{role}-{viewport}" / "menu-open.png")
            for endpoint, url in urls:
                problems += _check_page(page, base + url, role, viewport, endpoint)
            context.close()
    elapsed = time.monotonic() - started
    print(f"walked {len(urls)} pages × {len(users)} roles × {len(VIEWPORTS)} viewports in {elapsed:.1f} s")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_an_html_email_preview_shows_its_own_styles_without_breaking_the_page_policy(
    live_server,  # noqa: F811
    browser,  # noqa: F811
    make_user,
):
    make_user("admin", email="ada@example.com", customers=[])
    template = db.session.scalar(
        sa.select(MessageTemplate)
        .where(MessageTemplate.customer_id.is_(None), MessageTemplate.channel == Channel.EMAIL)
        .order_by(MessageTemplate.id)
        .limit(1)
    )
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/templates/{template.id}")
    html = '<style>h1 { color: rgb(200, 30, 40); }</style><h1 style="font-size: 31px">{{ event.title }}</h1>'
    page.get_by_label("HTML (email)").fill(html)
    heading = page.frame_locator("#preview-html").locator("h1")
    expect(heading).to_have_css("color", "rgb(200, 30, 40)")  # the <style> element applies
    expect(heading).to_have_css("font-size", "31px")  # and so does an inline style
    expect(heading).to_have_text("DiskFull on db-1")  # rendered with the sample alert
    page.screenshot(path=SCREENSHOTS / "template-html-preview.png", full_page=True)
    assert errors == []
