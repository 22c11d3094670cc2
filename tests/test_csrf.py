"""With CSRF on (as in production), every form refuses a request without its token."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD


@pytest.fixture
def csrf_client(make_app, database):
    from tests.conftest import _reset

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        _reset(database["seeds"])
        yield app.test_client()


def token_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', html).group(1)


def test_login_without_token_is_refused(csrf_client, make_user):
    user = make_user("admin")
    response = csrf_client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert csrf_client.get("/").status_code == 302


def test_login_and_logout_with_tokens(csrf_client, make_user):
    user = make_user("admin")
    token = token_from(csrf_client.get("/login").text)
    response = csrf_client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302

    refused = csrf_client.post("/logout")  # no token: another site cannot sign the user out
    assert refused.status_code == 400
    assert csrf_client.get("/").status_code == 200

    page_token = token_from(csrf_client.get("/").text)
    assert csrf_client.post("/logout", data={"csrf_token": page_token}).status_code == 302
    assert csrf_client.get("/").status_code == 302


def test_webhooks_do_not_need_csrf(csrf_client):
    response = csrf_client.post(
        "/api/v1/webhooks/alertmanager",
        json={"alerts": [{"status": "firing", "labels": {"alertname": "X", "severity": "info"}}]},
        headers={"Authorization": "Bearer test-alert-token"},
    )
    assert response.status_code == 200
