"""With CSRF on, every form of the operations pages refuses a request without its token, changing nothing."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.test_csrf import csrf_client, token_from  # noqa: F401  (fixture)
from webapp.extensions import db
from webapp.models import ApiKey, AuditLog, Customer, Notification, Role, SmtpConfig, Ticket, User, WebhookEndpoint


@pytest.fixture
def signed_in(csrf_client):  # noqa: F811
    customer = Customer(name="Acme Corp")
    user = User(email="admin@example.com", name="Ada", role=Role.ADMIN, customers=[customer])
    user.set_password(PASSWORD)
    ticket = Ticket(customer=customer, title="Disk full")
    config = SmtpConfig(customer=customer, host="smtp.example.com", from_email="a@example.com")
    endpoint = WebhookEndpoint(customer_id=None, name="Hook", url="https://h.example.com", secret_encrypted="x")
    key = ApiKey(name="k", prefix="opsr_x", key_hash="0" * 64)
    db.session.add_all([user, ticket, config, endpoint, key])
    db.session.commit()
    token = token_from(csrf_client.get("/login").text)
    answer = csrf_client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302
    return {"customer": customer.id, "ticket": ticket.id, "config": config.id, "endpoint": endpoint.id, "key": key.id}


def rows() -> tuple:
    return tuple(
        db.session.scalar(db.select(db.func.count()).select_from(model))
        for model in (Ticket, Notification, SmtpConfig, WebhookEndpoint, ApiKey, AuditLog)
    )


def test_every_ops_form_refuses_a_post_without_its_token(csrf_client, signed_in):  # noqa: F811
    ids = signed_in
    before = rows()
    posts = {
        "/tickets/new": {"customer": ids["customer"], "title": "x", "priority": "high"},
        f"/tickets/{ids['ticket']}/edit": {"priority": "urgent", "status": "resolved"},
        f"/tickets/{ids['ticket']}/ack": {},
        f"/tickets/{ids['ticket']}/assign-to-me": {},
        f"/tickets/{ids['ticket']}/resolve": {},
        f"/tickets/{ids['ticket']}/comment": {"body": "hello"},
        "/smtp/new": {"customer": ids["customer"], "host": "h", "from_email": "a@example.com"},
        f"/smtp/{ids['config']}": {"host": "evil.example.com", "from_email": "a@example.com"},
        f"/smtp/{ids['config']}/test": {"to": "x@example.com"},
        "/test-sends": {"customer": ids["customer"], "channel": "sms", "to": "+14155550101"},
        "/integrations/api-keys": {"name": "k2", "scope": "admin"},
        f"/integrations/api-keys/{ids['key']}/revoke": {},
        "/integrations/webhooks/new": {"name": "h2", "url": "https://x.example.com"},
        f"/integrations/webhooks/{ids['endpoint']}": {"name": "renamed", "url": "https://x.example.com"},
        f"/integrations/webhooks/{ids['endpoint']}/unpause": {},
        f"/integrations/webhooks/{ids['endpoint']}/rotate-secret": {},
    }
    for path, data in posts.items():
        answer = csrf_client.post(path, data=data)
        assert answer.status_code == 400, path
        assert "CSRF" in answer.text, path
    db.session.expire_all()
    assert rows() == before
    ticket = db.session.get(Ticket, ids["ticket"])
    assert ticket.acknowledged_at is None and ticket.status == "open" and ticket.assignee_id is None
    assert db.session.get(SmtpConfig, ids["config"]).host == "smtp.example.com"
    assert db.session.get(ApiKey, ids["key"]).revoked_at is None
    assert db.session.get(WebhookEndpoint, ids["endpoint"]).name == "Hook"


def test_a_form_with_its_token_goes_through(csrf_client, signed_in):  # noqa: F811
    page = csrf_client.get(f"/tickets/{signed_in['ticket']}").text
    answer = csrf_client.post(f"/tickets/{signed_in['ticket']}/ack", data={"csrf_token": token_from(page)})
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, signed_in["ticket"]).acknowledged_at is not None
