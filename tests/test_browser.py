"""The admin pages in a real browser: Playwright driving Debian's Chromium against a live server."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, load_fixture, twilio_settings
from webapp.queue import EmbeddedWorker, get_queue

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def open_menu(page, group: str, item: str) -> None:
    """Open a page from the top menu: the item itself when the bar shows it (a group's first page, of the group's
    name), else through its group's dropdown."""
    nav = page.locator("nav.navbar")
    page.wait_for_load_state("load")  # Bootstrap's script runs the dropdowns
    if item != group:
        nav.get_by_role("button", name=re.compile(f"^{group}")).click()
    nav.get_by_role("link", name=item, exact=True).first.click()


@pytest.fixture
def live_server(make_app, app, twilio):
    served = make_app(**twilio_settings(twilio.base_url))
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_port}"
    yield served
    server.shutdown()


@pytest.fixture
def browser():
    assert Path(CHROMIUM).exists(), "install Debian's chromium package (bash .ci/setup does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_operator_logs_in_and_sees_an_alert_sms_on_the_dashboard(live_server, browser, make_user, twilio):
    make_user("admin", email="ada@example.com", name="Ada Admin", phone="+14155550101")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    SCREENSHOTS.mkdir(exist_ok=True)

    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/login?next=%2F")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")
    page.screenshot(path=SCREENSHOTS / "login-failed.png")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("Ada Admin")).to_be_visible()

    response = page.request.post(
        live_server.url + "/api/v1/webhooks/alertmanager",
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers={"Authorization": "Bearer test-alert-token", "Content-Type": "application/json"},
    )
    assert response.status == 200
    get_queue(live_server).worker(EmbeddedWorker).work(burst=True, logging_level="WARNING")

    page.reload()
    table = page.get_by_role("table").nth(1)
    expect(table.get_by_role("cell", name="DiskFull")).to_be_visible()
    expect(table.get_by_text("sent", exact=True)).to_be_visible()
    assert [m["To"] for m in twilio.received] == ["+14155550101"]
    page.screenshot(path=SCREENSHOTS / "dashboard.png", full_page=True)

    open_menu(page, "People", "Users")
    expect(page.get_by_role("cell", name="+14155550101")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "users.png", full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    page.goto(live_server.url + "/users")
    expect(page).to_have_url(live_server.url + "/login?next=%2Fusers")
