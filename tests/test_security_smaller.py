"""The smaller holes: token enumeration, a scoped staff list, HSTS, secrets in access logs, CR/LF in email
headers, out-of-range cursors and dates, and the password policy."""

from __future__ import annotations

import base64
import json
import logging

import pytest
import werkzeug.security

import webapp.models.user
import webapp.security
from tests.test_email_delivery import _smtp_servers, certificate, email_for, smtp, smtp_config  # noqa: F401
from webapp import logs, outbox
from webapp.extensions import db
from webapp.models import NotificationStatus as S
from webapp.models import Role
from webapp.services.integrations import api_keys
from webapp.services.people import users


def test_token_for_an_unknown_email_costs_a_password_check_like_a_known_one(client, make_user, monkeypatch):
    """The answer to an unknown email does the same work (one password hash) as to a wrong password."""
    known = make_user("viewer")
    checks = []
    real = werkzeug.security.check_password_hash
    for module in (webapp.security, webapp.models.user):  # where it is called from
        monkeypatch.setattr(module, "check_password_hash", lambda *a: checks.append(1) or real(*a))
    for email in (known.email, "nobody-here@example.com"):
        answer = client.post("/api/v1/auth/token", json={"email": email, "password": "not-the-password"})
        assert answer.status_code == 401
        assert answer.json["error"]["message"] == "Wrong email or password, or the account is deactivated."
    assert len(checks) == 2


def test_the_new_ticket_form_after_an_error_lists_only_the_operators_customers_staff(
    client, login_as, customer, make_customer, make_user
):
    globex = make_customer("Globex")
    make_user("operator", name="Gloria Globex-Staff", customers=[globex])
    make_user("operator", name="Alice Acme-Staff", customers=[customer])
    login_as("operator", customers=[customer])
    for chosen in (globex.id, customer.id):
        page = client.post("/tickets/new", data={"customer": chosen, "title": ""})
        assert page.status_code in (200, 400)
        assert "Gloria Globex-Staff" not in page.text
    assert "Alice Acme-Staff" in page.text


def test_hsts_in_production_only(make_app, database):
    production = make_app(OPSRELAY_ENV="production", SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    answer = production.test_client().get("/healthz")
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    development = make_app()
    assert "Strict-Transport-Security" not in development.test_client().get("/healthz").headers
    assert production.config["REMEMBER_COOKIE_SAMESITE"] == "Lax" and production.config["REMEMBER_COOKIE_SECURE"]


def test_api_keys_in_urls_never_reach_the_access_log(caplog):
    logs.install_redaction()
    key = "opsr_" + "k" * 40
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="werkzeug"):  # the app quiets it
        logging.getLogger("werkzeug").info('127.0.0.1 - - "%s" %s -', f"GET /api/v1/events?api_key={key} HTTP/1.1", 200)
        logging.getLogger("gunicorn.access").info(
            '%(h)s "%(r)s" %(s)s', {"h": "10.0.0.1", "r": f"GET /api/v1/events?limit=5&api_key={key}", "s": "200"}
        )
    text = caplog.text
    assert key not in text
    assert text.count("api_key=[redacted]") == 2 and "limit=5" in text


def test_a_newline_in_an_alert_label_cannot_break_or_inject_email_headers(smtp, make_customer, drain):  # noqa: F811
    acme = make_customer("Acme")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example")
    notification = email_for(acme, "ops@acme.example", title="Disk full\r\nBcc: victim@evil.example\nX-Evil: 1")
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == S.SENT, notification.error_message
    [mail] = smtp["starttls"].messages
    assert "Bcc" not in mail and "X-Evil" not in mail
    assert "\n" not in mail["Subject"] and "Disk full" in mail["Subject"]


def _cursor(when: str, row_id) -> str:
    return base64.urlsafe_b64encode(json.dumps([when, row_id]).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        "cursor=99999999999999999999",
        "cursor=" + _cursor("9999-12-31T23:59:59-23:59", 5),
        "cursor=" + _cursor("2026-01-01T00:00:00+00:00", 10**30),
        "cursor=" + _cursor("0001-01-01T00:00:00+23:59", 5),
        "created_after=0001-01-01T00:00:00%2B23:59",
        "created_before=9999-12-31T23:59:59-23:59",
    ],
)
@pytest.mark.parametrize("resource", ["events", "notifications"])
def test_out_of_range_cursors_and_dates_are_a_400(client, make_user, resource, query):
    admin = make_user(Role.ADMIN)
    _, plain = api_keys.create_key(name="k", scopes=["admin"], customer=None, expires_days=None, created_by=admin)
    db.session.commit()
    answer = client.get(f"/api/v1/{resource}?{query}", headers={"X-API-Key": plain})
    assert answer.status_code == 400, answer.text
    assert answer.json["error"]["code"] == "invalid_query"


@pytest.mark.parametrize(
    "password",
    [
        "password123",
        "Password2024!",
        "P@ssw0rd2026",
        "qwertyuiop",
        "1234567890",
        "Summer2026!!",
        "aaaaaaaaaaaa",
        "abababababab",
        "iloveyou12345",
    ],
)
def test_common_passwords_are_refused_with_a_clear_message(client, login_as, password):
    login_as("admin", customers=[])
    page = client.post(
        "/users/new",
        data={
            "email": "new.person@example.com",
            "name": "New",
            "role": "viewer",
            "access": "password",
            "password": password,
        },
    )
    assert page.status_code == 400
    assert "too common" in page.text or "too few characters" in page.text
    with pytest.raises(users.UserError):
        users.check_password_strength(password)


def test_a_password_made_of_the_email_name_is_refused_and_a_phrase_is_accepted(app):
    with pytest.raises(users.UserError, match="email"):
        users.check_password_strength("margaret.hamilton-1969", email="margaret.hamilton@example.com")
    users.check_password_strength("violet staple river kettle", email="margaret.hamilton@example.com")
