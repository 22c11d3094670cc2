"""The API's front door: keys in a header, a bearer or the query; tokens; scopes; customer scoping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from webapp.api.access import issue_token, new_key
from webapp.extensions import db
from webapp.models import ApiKey, Role, utcnow
from webapp.security import hash_api_key


@pytest.fixture
def make_key(app, make_user):
    def make(*, scopes=("read",), customer=None, expires_in=None, revoked=False, owner=None):
        owner = owner or make_user(Role.ADMIN)
        key, prefix = new_key()
        row = ApiKey(
            name="ci",
            prefix=prefix,
            key_hash=hash_api_key(key),
            scopes=list(scopes),
            customer_id=customer.id if customer else None,
            created_by_id=owner.id,
            expires_at=None if expires_in is None else utcnow() + expires_in,
            revoked_at=utcnow() if revoked else None,
        )
        db.session.add(row)
        db.session.commit()
        return key, row

    return make


def test_key_in_header_bearer_or_query_says_who_it_is(client, make_key, customer):
    key, row = make_key(scopes=["write"], customer=customer)
    for kwargs in (
        {"headers": {"X-API-Key": key}},
        {"headers": {"Authorization": f"Bearer {key}"}},
        {"query_string": {"api_key": key}},
    ):
        response = client.get("/api/v1/auth/verify", **kwargs)
        assert response.status_code == 200, response.json
        assert response.json["scope"] == "write"
        assert response.json["api_key"]["prefix"] == row.prefix
        assert response.json["customer_ids"] == [customer.id]
    db.session.refresh(row)
    assert row.last_used_at is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Send an API key"),
        ({"headers": {"X-API-Key": "opsr_not-a-key"}}, "unknown or revoked"),
        ({"headers": {"Authorization": "Bearer garbage"}}, "neither a valid API key"),
    ],
)
def test_missing_or_wrong_credentials_are_401_json(client, kwargs, message):
    response = client.get("/api/v1/auth/verify", **kwargs)
    assert response.status_code == 401
    assert message in response.json["error"]["message"]
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_expired_and_revoked_keys_are_refused(client, make_key):
    expired, _ = make_key(expires_in=timedelta(seconds=-1))
    revoked, _ = make_key(revoked=True)
    assert "expired" in client.get("/api/v1/auth/verify", headers={"X-API-Key": expired}).json["error"]["message"]
    assert client.get("/api/v1/auth/verify", headers={"X-API-Key": revoked}).status_code == 401


def test_user_token_carries_the_role_and_dies_with_the_password(app, client, make_user, customer):
    operator = make_user(Role.OPERATOR, customers=[customer])
    with app.test_request_context():
        token, ttl = issue_token(operator)
    assert ttl == app.config["API_TOKEN_TTL_SECONDS"]
    response = client.get("/api/v1/auth/verify", headers={"Authorization": f"Bearer {token}"})
    assert response.json["scope"] == "write"
    assert response.json["customer_ids"] == [customer.id]
    operator.set_password("a-new-password-123")
    db.session.commit()
    assert client.get("/api/v1/auth/verify", headers={"Authorization": f"Bearer {token}"}).status_code == 401
