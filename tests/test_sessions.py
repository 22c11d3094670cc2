"""Sessions end: a `session` or `remember_token` cookie copied before logout, a password change or reset, a
role or customer change or a deactivation no longer opens a page; "Sign out of all sessions" ends them all."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import AuditLog, Role

pytestmark = pytest.mark.usefixtures("each_request_loads_its_user")


def _sign_in(app, user, *, remember: bool = False):
    browser = app.test_client()
    data = {"email": user.email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    assert browser.post("/login", data=data).status_code == 302
    assert browser.get("/").status_code == 200
    return browser


def _copy(app, browser, *names):
    """A second browser holding copies of `browser`'s cookies (what a thief would replay)."""
    thief = app.test_client()
    for name in names:
        cookie = browser.get_cookie(name)
        assert cookie is not None, name
        thief.set_cookie(name, cookie.value)
    return thief


def _signed_out(browser) -> bool:
    answer = browser.get("/")
    return answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_a_session_cookie_copied_before_logout_is_dead_after_it(app, make_user):
    user = make_user("operator")
    browser = _sign_in(app, user)
    thief = _copy(app, browser, "session")
    assert not _signed_out(thief)  # the copy works while the session lives
    browser.post("/logout")
    assert _signed_out(browser)
    assert _signed_out(thief)


def test_a_remember_me_cookie_copied_before_logout_is_dead_after_it(app, make_user):
    user = make_user("operator")
    browser = _sign_in(app, user, remember=True)
    thief = _copy(app, browser, "remember_token")  # no session cookie: Flask-Login falls back on remember-me
    assert not _signed_out(thief)
    browser.post("/logout")
    assert _signed_out(thief)


def test_the_remember_me_cookie_carries_the_session_version(app, make_user):
    user = make_user("operator")
    browser = _sign_in(app, user, remember=True)
    assert browser.get_cookie("remember_token").value.startswith(f"{user.id}.{user.session_version}|")
    assert browser.get_cookie("remember_token").same_site == "Lax"


@pytest.mark.parametrize("how", ["reset", "role", "customers", "deactivate", "sign_out_all"])
def test_an_admin_change_ends_the_users_sessions_and_tokens(app, client, login_as, make_user, make_customer, how):
    victim = make_user("operator")
    their_browser = _sign_in(app, victim, remember=True)
    stolen = _copy(app, their_browser, "session", "remember_token")
    token = client.post("/api/v1/auth/token", json={"email": victim.email, "password": PASSWORD}).get_json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/api/v1/auth/verify", headers=bearer).status_code == 200

    admin = login_as("admin", customers=[])
    if how == "reset":
        answer = client.post(
            f"/users/{victim.id}/password", data={"access": "password", "password": "a-new-long-passphrase-9"}
        )
    elif how in ("role", "customers"):
        other = make_customer("Globex")
        answer = client.post(
            f"/users/{victim.id}/edit",
            data={
                "email": victim.email,
                "name": victim.name,
                "role": "viewer" if how == "role" else "operator",
                "customers": [other.id] if how == "customers" else [c.id for c in victim.customers],
            },
        )
    elif how == "deactivate":
        answer = client.post(f"/users/{victim.id}/deactivate")
    else:
        page = client.get(f"/users/{victim.id}/edit").text
        assert "Sign out of all sessions" in page
        answer = client.post(f"/users/{victim.id}/sessions/end")
    assert answer.status_code == 302, answer.text

    assert _signed_out(their_browser)
    assert _signed_out(stolen)
    assert client.get("/api/v1/auth/verify", headers=bearer).status_code == 401
    assert not _signed_out(client)  # the admin's own session goes on
    assert db.session.scalars(db.select(AuditLog).where(AuditLog.action == "user.sessions_ended")).all()
    del admin


def test_an_edit_that_changes_no_rights_keeps_sessions(app, client, login_as, make_user):
    victim = make_user("operator")
    their_browser = _sign_in(app, victim)
    login_as("admin", customers=[])
    client.post(
        f"/users/{victim.id}/edit",
        data={
            "email": victim.email,
            "name": "A New Name",
            "role": "operator",
            "customers": [c.id for c in victim.customers],
        },
    )
    assert not _signed_out(their_browser)


def test_an_admin_changing_their_own_password_stays_signed_in_here_only(app, client, login_as):
    admin = login_as(Role.ADMIN, customers=[])
    elsewhere = _sign_in(app, admin)
    answer = client.post(
        f"/users/{admin.id}/password", data={"access": "password", "password": "a-new-long-passphrase-9"}
    )
    assert answer.status_code == 302
    assert not _signed_out(client)
    assert _signed_out(elsewhere)


def test_signing_yourself_out_of_all_sessions_ends_this_one_too(app, client, login_as):
    admin = login_as(Role.ADMIN, customers=[])
    elsewhere = _sign_in(app, admin)
    answer = client.post(f"/users/{admin.id}/sessions/end")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert _signed_out(client) and _signed_out(elsewhere)


def test_a_cookie_from_before_session_versions_must_sign_in_again(app, make_user):
    from flask.sessions import SecureCookieSessionInterface

    user = make_user("operator")
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    browser = app.test_client()
    browser.set_cookie("session", serializer.dumps({"_user_id": str(user.id), "_fresh": True}))
    assert _signed_out(browser)
