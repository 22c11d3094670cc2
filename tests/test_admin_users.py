"""User pages: create with a password or an invitation link, edit, deactivate, reset, search."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.admin_world import QueryCounter, can_sign_in
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import AuditLog, Role, User

NEW_PASSWORD = "a-long-new-password"


def _user(email: str) -> User | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.email == email))


def test_admin_creates_a_user_with_a_password_who_can_sign_in(app, client, login_as, customer):
    login_as("admin")
    response = client.post(
        "/users/new",
        data={
            "email": "Carol@Example.com",
            "name": "Carol",
            "role": "operator",
            "customers": [customer.id],
            "access": "password",
            "password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    carol = _user("carol@example.com")
    assert carol.role == Role.OPERATOR and [c.id for c in carol.customers] == [customer.id]
    assert can_sign_in(app, "carol@example.com", NEW_PASSWORD)


def test_an_invitation_link_is_shown_once_and_works_once(app, client, login_as):
    login_as("admin")
    response = client.post(
        "/users/new", data={"email": "dan@example.com", "name": "Dan", "role": "viewer", "access": "invite"}
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    link = re.search(r'value="(http://localhost/invite/[^"]+)"', response.text).group(1)
    path = link.removeprefix("http://localhost")
    guest = app.test_client()
    assert guest.get(path).status_code == 200
    mismatch = guest.post(path, data={"password": NEW_PASSWORD, "confirm": "something else"})
    assert mismatch.status_code == 400 and "The two passwords differ." in mismatch.text
    assert guest.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert can_sign_in(app, "dan@example.com", NEW_PASSWORD)
    again = app.test_client().get(path)
    assert again.status_code == 404 and "no longer works" in again.text


def test_a_tampered_or_expired_link_does_not_work(app, client, login_as, make_user):
    login_as("admin")
    erin = make_user("viewer", email="erin@example.com")
    page = client.post(f"/users/{erin.id}/password", data={"access": "invite"})
    path = re.search(r'value="http://localhost(/invite/[^"]+)"', page.text).group(1)
    assert app.test_client().get(path[:-2] + "xx").status_code == 404
    app.config["INVITE_TTL_SECONDS"] = -1
    assert app.test_client().get(path).status_code == 404


def test_invalid_input_is_refused_next_to_the_field_and_kept(client, login_as, make_user):
    login_as("admin")
    make_user("viewer", email="taken@example.com")
    response = client.post(
        "/users/new",
        data={"email": "taken@example.com", "name": "Twin", "role": "viewer", "access": "password", "password": ""},
    )
    assert response.status_code == 400
    assert "Enter a password, or choose an invitation link." in response.text
    assert 'value="Twin"' in response.text
    bad_email = client.post("/users/new", data={"email": "not-an-email", "name": "X", "access": "invite"})
    assert bad_email.status_code == 400 and 'value="not-an-email"' in bad_email.text
    dup = client.post("/users/new", data={"email": "taken@example.com", "name": "Twin", "access": "invite"})
    assert dup.status_code == 400 and "already has an account" in dup.text


def test_edit_changes_role_and_customers_and_is_audited(client, login_as, make_user, make_customer, customer):
    admin = login_as("admin")
    globex = make_customer("Globex")
    fay = make_user("viewer", email="fay@example.com")
    response = client.post(
        f"/users/{fay.id}/edit",
        data={"email": "fay@example.com", "name": "Fay F", "role": "operator", "customers": [globex.id]},
    )
    assert response.status_code == 302
    fay = _user("fay@example.com")
    assert fay.role == Role.OPERATOR and [c.name for c in fay.customers] == ["Globex"]
    row = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "user.update"))
    assert row.actor_id == admin.id and row.changes["role"] == ["viewer", "operator"]


def test_admin_cannot_demote_or_deactivate_themself(client, login_as):
    admin = login_as("admin")
    response = client.post(f"/users/{admin.id}/edit", data={"email": admin.email, "name": "A", "role": "viewer"})
    assert response.status_code == 400 and "You cannot change your own role." in response.text
    client.post(f"/users/{admin.id}/deactivate")
    assert _user(admin.email).is_active


def test_a_deactivated_user_cannot_sign_in(app, client, login_as, make_user):
    login_as("admin")
    gus = make_user("operator", email="gus@example.com")
    assert client.post(f"/users/{gus.id}/deactivate").status_code == 302
    assert not _user("gus@example.com").is_active
    assert not can_sign_in(app, "gus@example.com", PASSWORD)
    client.post(f"/users/{gus.id}/activate")
    assert _user("gus@example.com").is_active


def test_admin_sets_a_new_password(app, client, login_as, make_user):
    login_as("admin")
    hal = make_user("viewer", email="hal@example.com")
    short = client.post(f"/users/{hal.id}/password", data={"access": "password", "password": "short"})
    assert short.status_code == 400 and "Use at least 10 characters." in short.text
    assert (
        client.post(f"/users/{hal.id}/password", data={"access": "password", "password": NEW_PASSWORD}).status_code
        == 302
    )
    assert can_sign_in(app, "hal@example.com", NEW_PASSWORD)


def test_non_admins_cannot_manage_users(client, login_as, make_user):
    login_as("operator")
    ivy = make_user("viewer", email="ivy@example.com")
    assert client.get("/users").status_code == 403
    assert (
        client.post("/users/new", data={"email": "x@example.com", "name": "X", "access": "invite"}).status_code == 403
    )
    assert (
        client.post(f"/users/{ivy.id}/edit", data={"email": ivy.email, "name": "I", "role": "admin"}).status_code == 403
    )
    assert client.post(f"/users/{ivy.id}/deactivate").status_code == 403
    assert client.post(f"/users/{ivy.id}/password", data={"access": "invite"}).status_code == 403
    assert _user("ivy@example.com").role == Role.VIEWER and _user("ivy@example.com").is_active


def test_search_and_bounded_queries(client, login_as, make_user):
    login_as("admin")
    make_user("viewer", name="Zelda Zed", phone="+14155550150")
    with QueryCounter() as few:
        client.get("/users")
    for _ in range(30):
        make_user("viewer", phone="+14155550151")
    with QueryCounter() as many:
        assert client.get("/users").status_code == 200
    assert many.count == few.count
    found = client.get("/users?q=zelda")
    assert "Zelda Zed" in found.text and "User 3" not in found.text
