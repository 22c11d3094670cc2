"""Login, logout, roles, safe redirects and the login rate limit."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import User


def login(client, email, password=PASSWORD, **kwargs):
    return client.post("/login", data={"email": email, "password": password}, **kwargs)


def test_login_page_renders(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert "Sign in to OpsRelay" in page.text
    assert 'name="password"' in page.text


@pytest.mark.parametrize("path", ["/", "/users"])
def test_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_then_dashboard_then_logout(client, make_user):
    user = make_user("viewer", name="Vera Viewer")
    response = login(client, user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "Dashboard" in dashboard.text and "Vera Viewer" in dashboard.text
    assert db.session.get(User, user.id).last_login_at is not None

    out = client.post("/logout")
    assert out.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_email_is_case_insensitive(client, make_user):
    user = make_user("viewer", email="casey@example.com")
    assert login(client, "  Casey@Example.COM ").status_code == 302
    assert user.id


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_bad_password_is_refused_with_a_message(client, make_user, password):
    user = make_user("admin")
    response = login(client, user.email, password)
    assert response.status_code in (400, 401)
    assert client.get("/").status_code == 302
    if password:
        assert "Invalid email or password." in response.text


def test_unknown_email_gets_the_same_message(client):
    response = login(client, "nobody@example.com")
    assert response.status_code == 401
    assert "Invalid email or password." in response.text


def test_deactivated_user_cannot_log_in(client, make_user):
    user = make_user("admin", active=False)
    response = login(client, user.email)
    assert response.status_code == 401
    assert client.get("/").status_code == 302


def test_deactivating_a_signed_in_user_ends_their_session(client, login_as):
    user = login_as("operator")
    assert client.get("/").status_code == 200
    db.session.get(User, user.id).is_active = False
    db.session.commit()
    assert client.get("/").status_code == 302


def test_next_redirect_stays_on_site(client, make_user):
    user = make_user("admin")
    assert login(client, user.email, query_string={"next": "/users"}).headers["Location"] == "/users"


@pytest.mark.parametrize(
    "target", ["https://evil.example.com/", "//evil.example.com/x", "/\\evil.example.com", "javascript:alert(1)"]
)
def test_next_redirect_cannot_leave_the_site(client, make_user, target):
    user = make_user("admin")
    response = login(client, user.email, query_string={"next": target})
    assert response.headers["Location"] == "/"


def test_login_is_rate_limited_after_repeated_failures(client, make_user):
    user = make_user("admin")
    for _ in range(5):
        assert login(client, user.email, "wrong").status_code == 401
    blocked = login(client, user.email, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers


def test_successful_logins_do_not_count_against_the_limit(client, make_user):
    user = make_user("admin")
    for _ in range(7):
        assert login(client, user.email).status_code == 302
        client.post("/logout")


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("operator", 403), ("admin", 200)])
def test_users_page_is_for_admins(client, login_as, make_user, role, status):
    make_user("operator", name="Olga Operator", phone="+14155550123")
    login_as(role)
    response = client.get("/users")
    assert response.status_code == status
    if status == 200:
        assert "Olga Operator" in response.text and "+14155550123" in response.text
    else:
        assert "needs the admin role" in response.text


def test_users_page_search(client, login_as, make_user):
    login_as("admin")
    make_user("viewer", name="Grace Hopper")
    make_user("viewer", name="Alan Turing")
    page = client.get("/users", query_string={"q": "hopper"})
    assert "Grace Hopper" in page.text and "Alan Turing" not in page.text


def test_admin_menu_shows_only_what_the_role_allows(client, login_as):
    login_as("viewer")
    assert 'href="/users"' not in client.get("/").text


def test_unknown_page_is_404_in_the_layout(client, login_as):
    login_as("viewer")
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "404 · Not Found" in response.text


def test_pages_carry_security_headers(client):
    headers = client.get("/login").headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Request-ID"]
