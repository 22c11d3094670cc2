"""Integrations page: inbound URLs and token status, outgoing endpoints with secrets shown once, API keys."""

from __future__ import annotations

import re

from webapp.extensions import db
from webapp.models import ApiKey, AuditLog, WebhookDelivery, WebhookEndpoint, utcnow
from webapp.security import decrypt_secret


def test_inbound_urls_and_alertmanager_receiver(client, login_as, app):
    app.config["PUBLIC_BASE_URL"] = "https://ops.example.com"
    login_as("operator")
    page = client.get("/integrations").text
    assert "https://ops.example.com/api/v1/webhooks/twilio/status" in page
    assert "https://ops.example.com/api/v1/webhooks/twilio/inbound" in page
    assert 'url: "https://ops.example.com/api/v1/webhooks/alertmanager"' in page
    assert "credentials_file:" in page and "send_resolved: true" in page
    assert "test-alert-token" not in page  # the token's status and fingerprint, never the token
    assert "fingerprint sha256:" in page and "last alert received: never" in page


def test_api_key_is_shown_once_stored_hashed_and_works_until_revoked(client, login_as, customer):
    login_as("admin")
    page = client.post("/integrations/api-keys", data={"name": "Grafana", "customer": "", "scope": "write"}).text
    key = re.search(r'new-api-key mb-0">(opsr_[^<]+)<', page).group(1)
    api_key = db.session.scalars(db.select(ApiKey)).one()
    assert api_key.scopes == ["read", "write"] and api_key.customer_id is None
    assert key not in api_key.key_hash and api_key.prefix == key[:12]
    assert key not in client.get("/integrations").text  # never again
    assert client.get("/api/v1/auth/verify", headers={"X-API-Key": key}).status_code == 200

    client.post(f"/integrations/api-keys/{api_key.id}/revoke")
    assert client.get("/api/v1/auth/verify", headers={"X-API-Key": key}).status_code == 401
    assert "revoked" in client.get("/integrations").text
    actions = db.session.scalars(db.select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["api_key.create", "api_key.revoke"]


def test_operator_keys_need_one_of_their_customers_and_at_most_write(client, login_as, customer, make_customer):
    other = make_customer("Globex")
    login_as("operator")
    for data in (
        {"name": "k", "customer": "", "scope": "read"},
        {"name": "k", "customer": other.id, "scope": "read"},
        {"name": "k", "customer": customer.id, "scope": "admin"},
    ):
        answer = client.post("/integrations/api-keys", data=data)
        assert answer.status_code == 422
        assert "Not a valid choice" in answer.text or "Pick one of your customers." in answer.text
    assert client.post("/integrations/api-keys", data={"name": "k", "customer": customer.id}).status_code == 200
    assert db.session.scalars(db.select(ApiKey.customer_id)).all() == [customer.id]


def test_operator_cannot_revoke_a_global_key(client, login_as, make_user):
    admin = make_user("admin")
    key = ApiKey(name="global", prefix="opsr_abc", key_hash="0" * 64, created_by_id=admin.id)
    db.session.add(key)
    db.session.commit()
    login_as("operator")
    assert client.post(f"/integrations/api-keys/{key.id}/revoke").status_code == 404
    db.session.refresh(key)
    assert key.revoked_at is None


def test_endpoint_secret_shown_once_and_encrypted(client, login_as, customer):
    login_as("operator")
    page = client.post(
        "/integrations/webhooks/new",
        data={
            "customer": customer.id,
            "name": "Chat bridge",
            "url": "https://chat.example.com/hook",
            "event_types": ["event.created", "ticket.sla_breach"],
            "is_active": "y",
        },
    ).text
    secret = re.search(r'webhook-secret mb-0">(whsec_[^<]+)<', page).group(1)
    endpoint = db.session.scalars(db.select(WebhookEndpoint)).one()
    assert decrypt_secret(endpoint.secret_encrypted) == secret and secret not in endpoint.secret_encrypted
    assert endpoint.event_types == ["event.created", "ticket.sla_breach"]
    assert secret not in client.get(f"/integrations/webhooks/{endpoint.id}").text
    rotated = client.post(f"/integrations/webhooks/{endpoint.id}/rotate-secret").text
    new_secret = re.search(r'webhook-secret mb-0">(whsec_[^<]+)<', rotated).group(1)
    db.session.refresh(endpoint)
    assert new_secret != secret and decrypt_secret(endpoint.secret_encrypted) == new_secret


def test_endpoint_url_is_validated(client, login_as, customer):
    login_as("operator")
    page = client.post("/integrations/webhooks/new", data={"customer": customer.id, "name": "x", "url": "ftp://nope"})
    assert page.status_code == 422 and "Enter an http(s) URL." in page.text and 'value="ftp://nope"' in page.text
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookEndpoint)) == 0


def test_paused_endpoint_shows_reason_attempts_and_unpauses(client, login_as, customer):
    login_as("operator")
    endpoint = WebhookEndpoint(
        customer_id=customer.id,
        name="Chat",
        url="https://chat.example.com/h",
        secret_encrypted="x",
        paused_at=utcnow(),
        paused_reason="10 failures in a row (HTTP 502)",
        consecutive_failures=10,
    )
    db.session.add(endpoint)
    db.session.flush()
    db.session.add(WebhookDelivery(endpoint_id=endpoint.id, event_type="alert", status_code=502, error="Bad Gateway"))
    db.session.commit()
    assert "10 failures in a row (HTTP 502)" in client.get("/integrations").text
    page = client.get(f"/integrations/webhooks/{endpoint.id}").text
    assert "Bad Gateway" in page and "Unpause" in page
    client.post(f"/integrations/webhooks/{endpoint.id}/unpause")
    db.session.refresh(endpoint)
    assert endpoint.paused_at is None and endpoint.consecutive_failures == 0
    assert "Unpause" not in client.get(f"/integrations/webhooks/{endpoint.id}").text


def test_edit_endpoint_and_scoping(client, login_as, customer, make_customer):
    other = make_customer("Globex")
    login_as("operator")
    mine = WebhookEndpoint(customer_id=customer.id, name="Mine", url="https://a.example.com", secret_encrypted="x")
    theirs = WebhookEndpoint(customer_id=other.id, name="Theirs", url="https://b.example.com", secret_encrypted="x")
    db.session.add_all([mine, theirs])
    db.session.commit()
    answer = client.post(f"/integrations/webhooks/{mine.id}", data={"name": "Mine 2", "url": "https://c.example.com"})
    assert answer.status_code == 302
    db.session.refresh(mine)
    assert mine.name == "Mine 2" and mine.url == "https://c.example.com" and mine.is_active is False
    assert "Theirs" not in client.get("/integrations").text
    assert client.get(f"/integrations/webhooks/{theirs.id}").status_code == 404
    assert client.post(f"/integrations/webhooks/{theirs.id}/unpause").status_code == 404


def test_viewer_neither_sees_nor_changes(client, login_as, customer):
    login_as("viewer")
    endpoint = WebhookEndpoint(customer_id=customer.id, name="Chat", url="https://a.example.com", secret_encrypted="x")
    db.session.add(endpoint)
    db.session.commit()
    page = client.get("/integrations")  # the team's wiring is not a customer's viewer's (issue 18)
    assert page.status_code == 403 and "Chat" not in page.text and "Create key" not in page.text
    assert client.post("/integrations/api-keys", data={"name": "k", "customer": customer.id}).status_code == 403
    assert client.get("/integrations/webhooks/new").status_code == 403
    assert (
        client.post(
            f"/integrations/webhooks/{endpoint.id}", data={"name": "x", "url": "https://x.example.com"}
        ).status_code
        == 403
    )
    assert client.post(f"/integrations/webhooks/{endpoint.id}/rotate-secret").status_code == 403
