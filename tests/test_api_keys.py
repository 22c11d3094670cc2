"""API keys over the API: create (admin scope), use, expire, revoke; tokens; per-key rate limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import PASSWORD, _reset
from webapp.extensions import db
from webapp.models import ApiKey, AuditLog, Role, utcnow
from webapp.services.integrations import api_keys


@pytest.fixture
def admin_key(app, make_user):
    admin = make_user(Role.ADMIN)
    key, plain = api_keys.create_key(
        name="bootstrap", scopes=["admin"], customer=None, expires_days=None, created_by=admin
    )
    db.session.commit()
    return plain


def auth(key: str) -> dict:
    return {"X-API-Key": key}


def test_seed_curl_example_creates_a_key_shown_once_and_stored_hashed(client, admin_key):
    response = client.post(
        "/api/v1/auth/api-keys", json={"name": "My Integration", "expires_days": 90}, headers=auth(admin_key)
    )
    assert response.status_code == 201, response.json
    plain = response.json["key"]
    assert plain.startswith("opsr_") and response.json["prefix"] == plain[:12]
    assert response.json["scopes"] == ["read"] and response.json["status"] == "active"
    row = db.session.get(ApiKey, response.json["id"])
    assert plain not in (row.key_hash, row.prefix)
    assert timedelta(days=89) < row.expires_at - utcnow() <= timedelta(days=90)
    listed = client.get("/api/v1/auth/api-keys", headers=auth(admin_key)).json["items"]
    assert all("key" not in item and plain not in str(item) for item in listed)
    assert db.session.scalar(db.select(AuditLog.action).where(AuditLog.target_id == row.id)) == "api_key.create"
    verified = client.get("/api/v1/auth/verify", headers=auth(plain)).json
    assert verified["api_key"]["name"] == "My Integration" and verified["scope"] == "read"


def test_revoked_key_stops_working_at_once(client, admin_key):
    created = client.post(
        "/api/v1/auth/api-keys", json={"name": "ci", "scopes": ["write"]}, headers=auth(admin_key)
    ).json
    assert client.get("/api/v1/events", headers=auth(created["key"])).status_code == 200
    revoked = client.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=auth(admin_key))
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    refused = client.get("/api/v1/events", headers=auth(created["key"]))
    assert refused.status_code == 401 and "revoked" in refused.json["error"]["message"]


def test_expired_key_is_refused(client, admin_key):
    created = client.post("/api/v1/auth/api-keys", json={"name": "short", "expires_days": 1}, headers=auth(admin_key))
    row = db.session.get(ApiKey, created.json["id"])
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.get("/api/v1/events", headers=auth(created.json["key"]))
    assert response.status_code == 401 and "expired" in response.json["error"]["message"]
    assert client.get("/api/v1/auth/api-keys", headers=auth(admin_key)).json["items"][0]["status"] == "expired"


def test_wrong_scope_is_403(client, admin_key):
    reader = client.post("/api/v1/auth/api-keys", json={"name": "r"}, headers=auth(admin_key)).json["key"]
    response = client.post("/api/v1/auth/api-keys", json={"name": "escalate"}, headers=auth(reader))
    assert response.status_code == 403 and "admin" in response.json["error"]["message"]
    assert client.post("/api/v1/events", json={"title": "x"}, headers=auth(reader)).status_code == 403


def test_customer_key_cannot_reach_another_customer(client, admin_key, customer, make_customer):
    other = make_customer("Other Corp")
    created = client.post(
        "/api/v1/auth/api-keys",
        json={"name": "acme admin", "scopes": ["admin"], "customer_id": customer.id},
        headers=auth(admin_key),
    ).json
    scoped = created["key"]
    refused = client.post("/api/v1/auth/api-keys", json={"name": "x", "customer_id": other.id}, headers=auth(scoped))
    assert refused.status_code == 422 and "customer_id" in refused.json["error"]["fields"]
    own = client.post("/api/v1/auth/api-keys", json={"name": "acme reader"}, headers=auth(scoped))
    assert own.status_code == 201 and own.json["customer_id"] == customer.id
    global_id = db.session.scalar(db.select(ApiKey.id).where(ApiKey.name == "bootstrap"))
    assert client.delete(f"/api/v1/auth/api-keys/{global_id}", headers=auth(scoped)).status_code == 404
    assert {k["name"] for k in client.get("/api/v1/auth/api-keys", headers=auth(scoped)).json["items"]} == {
        "acme admin",
        "acme reader",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "x", "scopes": "admin"}, "scopes"),
        ({"name": "x", "expires_days": 0}, "expires_days"),
        ({"name": "x", "expires_days": "90"}, "expires_days"),
        ({"name": "x", "customer_id": 999}, "customer_id"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)
def test_invalid_key_requests_are_422_and_create_nothing(client, admin_key, body, field):
    response = client.post("/api/v1/auth/api-keys", json=body, headers=auth(admin_key))
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]
    assert db.session.scalar(db.select(db.func.count(ApiKey.id))) == 1


def test_token_for_email_and_password(client, make_user, customer):
    user = make_user(Role.OPERATOR, email="ops@example.com")
    response = client.post("/api/v1/auth/token", json={"email": "OPS@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "bearer" and response.json["expires_in"] > 0
    bearer = {"Authorization": f"Bearer {response.json['access_token']}"}
    verified = client.get("/api/v1/auth/verify", headers=bearer).json
    assert verified["user"]["id"] == user.id and verified["customer_ids"] == [customer.id]
    assert client.post("/api/v1/auth/token", json={"email": "ops@example.com", "password": "nope"}).status_code == 401
    user.is_active = False
    db.session.commit()
    refused = client.post("/api/v1/auth/token", json={"email": "ops@example.com", "password": PASSWORD})
    assert refused.status_code == 401
    assert client.post("/api/v1/auth/token", json={"email": "ops@example.com"}).status_code == 422


def test_token_endpoint_is_rate_limited_with_retry_after(make_app, database, make_user):
    app = make_app(API_TOKEN_RATE_LIMIT="2 per minute")
    with app.app_context():
        _reset(database["seeds"])
        client = app.test_client()
        for _ in range(2):
            assert (
                client.post("/api/v1/auth/token", json={"email": "a@example.com", "password": "x"}).status_code == 401
            )
        limited = client.post("/api/v1/auth/token", json={"email": "a@example.com", "password": "x"})
        assert limited.status_code == 429
        assert limited.json["error"]["code"] == "too_many_requests"
        assert int(limited.headers["Retry-After"]) > 0
        db.session.remove()
        db.engine.dispose()  # the shared PostgreSQL server has few connections to spare


def test_api_rate_limit_counts_per_key(make_app, database):
    from webapp.models import User

    app = make_app(API_RATE_LIMIT="3 per minute")
    with app.app_context():
        _reset(database["seeds"])
        admin = User(email="root@example.com", name="Root", role=Role.ADMIN)
        admin.set_password(PASSWORD)
        db.session.add(admin)
        db.session.flush()
        _, first = api_keys.create_key(name="a", scopes=["read"], customer=None, expires_days=None, created_by=admin)
        _, second = api_keys.create_key(name="b", scopes=["read"], customer=None, expires_days=None, created_by=admin)
        db.session.commit()
        client = app.test_client()
        for _ in range(3):
            assert client.get("/api/v1/events", headers=auth(first)).status_code == 200
        limited = client.get("/api/v1/events", headers=auth(first))
        assert limited.status_code == 429 and limited.is_json
        assert int(limited.headers["Retry-After"]) > 0
        assert client.get("/api/v1/events", headers=auth(second)).status_code == 200
        db.session.remove()
        db.engine.dispose()
