"""Every GET route of the app, as anonymous, a viewer, an operator of another customer and an admin.

Generic on purpose: a page added by any part of the app is walked as soon as it is registered.
`<int:x_id>` arguments get the id of a real row of the home customer (tests/admin_world.py maps
names to rows); other arguments get a placeholder that must not match anything."""

from __future__ import annotations

import re

import pytest

from tests.admin_world import build_world
from tests.conftest import PASSWORD

SKIP_ENDPOINTS = {"static"}
PUBLIC_ENDPOINTS = {"auth.login", "ops.healthz", "ops.readyz", "ops.metrics"}  # metrics: open without METRICS_TOKEN


def _get_rules(app):
    return sorted(
        (rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and rule.endpoint not in SKIP_ENDPOINTS),
        key=lambda rule: rule.rule,
    )


def _fill(rule, ids: dict[str, int]) -> str:
    args = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if type(converter).__name__ == "IntegerConverter":
            base = re.sub(r"_id$", "", name)
            assert base in ids, f"{rule.rule}: add a {base!r} row to tests/admin_world.py for the route walk"
            args[name] = ids[base]
        else:
            args[name] = "no-such-thing"
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
        elif endpoint not in PUBLIC_ENDPOINTS:
            assert response.status_code in {302, 401, 403, 404}, f"{url} is open to anyone"


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
