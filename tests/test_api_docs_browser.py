"""/api/docs in a real browser: Swagger UI from our static files renders the OpenAPI document under the CSP."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.test_browser import SCREENSHOTS, browser, live_server  # noqa: F401  (fixtures)


def test_api_reference_renders_without_csp_violations(live_server, browser, make_user):  # noqa: F811
    make_user("viewer", email="vera@example.com")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.goto(live_server.url + "/login?next=/api/docs")
    page.get_by_label("Email").fill("vera@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url + "/api/docs")
    expect(page.get_by_text("OpsRelay API")).to_be_visible(timeout=15_000)
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/webhooks/pagerduty")).to_be_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "api-docs.png")
    assert not [p for p in problems if "Content Security Policy" in p or "failed:" in p], problems
