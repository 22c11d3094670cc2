"""Every GET route of the app, as anonymous, a viewer, an operator of another customer and an admin.

Generic on purpose: a page added by any part of the app is walked as soon as it is registered.
`<int:x_id>` arguments get the id of a real row of the home customer (tests/admin_world.py maps
names to rows); other arguments get a placeholder that must not match anything."""

from __future__ import annotations

import re

import pytest
from werkzeug.routing.converters import NumberConverter

from tests.admin_world import build_world
from tests.conftest import PASSWORD

SKIP_ENDPOINTS = {"static"}
PUBLIC_ENDPOINTS = {
    "auth.login",
    "ops.healthz",
    "ops.readyz",
    "ops.metrics",
    "api.openapi_json",
    "api_docs",
    "ops.favicon",
}  # metrics: open without METRICS_TOKEN; the API description is public


def _get_rules(app):
    return sorted(
        (rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and rule.endpoint not in SKIP_ENDPOINTS),
        key=lambda rule: rule.rule,
    )


STRING_ARGS = {"priority": "high"}  # string arguments that name one of a fixed set


def _fill(rule, ids: dict[str, int]) -> str:
    args = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if isinstance(converter, NumberConverter):
            base = re.sub(r"_id$", "", name)
            assert base in ids, f"{rule.rule}: add a {base!r} row to tests/admin_world.py for the route walk"
            args[name] = ids[base]
        else:
            args[name] = STRING_ARGS.get(name, "no-such-thing")
    return rule.build(args, append_unknown=False)[1]


@pytest.fixture
def world(app, customer, make_customer, make_user, make_ticket):
    return build_world(home=customer, make_customer=make_customer, make_user=make_user, make_ticket=make_ticket)


def _login(client, user) -> None:
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302


def _walk(app, client, world):
    answers = {}
    for rule in _get_rules(app):
        url = _fill(rule, world.ids)
        response = client.get(url)
        answers[(rule.endpoint, url)] = response
        assert response.status_code < 500, f"{url} answered {response.status_code}"
    return answers


def _admin_page(endpoint: str) -> bool:
    return endpoint.startswith("admin.")


def test_anonymous_is_sent_to_login_from_every_admin_page(app, client, world):
    answers = _walk(app, client, world)
    assert any(_admin_page(e) for e, _ in answers)
    for (endpoint, url), response in answers.items():
        if _admin_page(endpoint):
            assert response.status_code == 302, url
            assert response.headers["Location"].startswith("/login?next="), url
        elif endpoint in PUBLIC_ENDPOINTS:
            assert response.status_code in {200, 302, 503}, url


def test_admin_opens_every_admin_page(app, client, world, make_user):
    _login(client, make_user("admin", customers=[]))
    for (endpoint, url), response in _walk(app, client, world).items():
        if _admin_page(endpoint):
            assert response.status_code == 200, f"{url}: {response.status_code}"


def test_viewer_of_the_customer_sees_or_is_forbidden_never_missing(app, client, world, make_user):
    _login(client, make_user("viewer", customers=[world.home]))
    answers = _walk(app, client, world)
    for (endpoint, url), response in answers.items():
        if _admin_page(endpoint):
            assert response.status_code in {200, 403}, f"{url}: {response.status_code}"
    assert answers[("admin.dashboard", "/")].status_code == 200
    assert answers[("admin.user_list", "/users")].status_code == 403
    assert answers[("admin.audit_list", "/audit")].status_code == 403
    assert answers[("admin.customer_create", "/customers/new")].status_code == 403


def test_operator_of_another_customer_cannot_open_this_customers_rows(app, client, world, make_user):
    _login(client, make_user("operator", customers=[world.other]))
    for (endpoint, url), response in _walk(app, client, world).items():
        if not _admin_page(endpoint):
            continue
        rule_has_id = any(ch.isdigit() for ch in url)
        if rule_has_id:
            assert response.status_code in {403, 404}, f"{url} leaks another customer's row"
        else:
            assert response.status_code in {200, 403}, f"{url}: {response.status_code}"


# POST routes that change nothing (previews); every other POST is a change.
READ_ONLY_POSTS = {"admin.template_preview", "admin.template_preview_html"}


def _post_rules(app):
    return sorted(
        (r for r in app.url_map.iter_rules() if "POST" in r.methods and r.endpoint.startswith("admin.")),
        key=lambda rule: rule.rule,
    )


def _audit_rows() -> int:
    from webapp.extensions import db
    from webapp.models import AuditLog

    db.session.expire_all()
    return db.session.query(AuditLog).count()


def test_anonymous_posts_change_nothing(app, client, world):
    before = _audit_rows()
    for rule in _post_rules(app):
        url = _fill(rule, world.ids)
        response = client.post(url, data={})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
    assert _audit_rows() == before


def test_operator_of_another_customer_changes_nothing_of_this_customer(app, client, world, make_user):
    _login(client, make_user("operator", customers=[world.other]))
    before = _audit_rows()
    for rule in _post_rules(app):
        if not rule.arguments:
            continue  # their own inbox and preferences
        url = _fill(rule, world.ids)
        response = client.post(url, data={"customer_id": world.home.id, "body_text": "x", "label": "x"})
        assert response.status_code in {403, 404}, f"{url}: {response.status_code}"
    assert _audit_rows() == before


def test_viewer_changes_nothing_of_their_customer(app, client, world, make_user):
    _login(client, make_user("viewer", customers=[world.home]))
    before = _audit_rows()
    for rule in _post_rules(app):
        if not rule.arguments or rule.endpoint in READ_ONLY_POSTS:
            continue
        url = _fill(rule, world.ids)
        response = client.post(url, data={"customer_id": world.home.id, "body_text": "x", "label": "x"})
        assert response.status_code in {403, 404}, f"{url}: {response.status_code}"
    assert _audit_rows() == before


@pytest.fixture
def csrf_app(make_app, database):
    from tests.conftest import _reset

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        _reset(database["seeds"])
        yield app


def test_every_admin_post_refuses_a_missing_csrf_token(csrf_app, customer, make_customer, make_user, make_ticket):
    world = build_world(home=customer, make_customer=make_customer, make_user=make_user, make_ticket=make_ticket)
    admin = make_user("admin", customers=[])
    client = csrf_app.test_client()
    page = client.get("/login").text
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
    client.post("/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token})
    before = _audit_rows()
    for rule in _post_rules(csrf_app):
        url = _fill(rule, world.ids)
        assert client.post(url, data={"body_text": "x", "label": "x"}).status_code == 400, url
    assert _audit_rows() == before
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', client.get("/preferences").text).group(1)
    preview = client.post(
        f"/templates/{world.ids['template']}/preview", data={"body_text": "hi"}, headers={"X-CSRFToken": token}
    )
    assert preview.status_code == 200 and preview.get_json()["sms"]["segments"] == 1
