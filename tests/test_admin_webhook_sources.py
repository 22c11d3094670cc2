"""Incoming webhook sources on the Integrations pages: admins create, rotate and deactivate; the secret is
shown once and stored encrypted; operators see only their customers' sources; viewers see none of them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

from webapp.extensions import db
from webapp.models import AuditLog, WebhookSource
from webapp.services.integrations import webhook_sources

LIST = "/integrations/sources"


def shown_secret(html: str) -> str:
    match = re.search(r'class="secret-once[^"]*"><code>([^<]+)</code>', html)
    assert match, "no secret on the page"
    return match.group(1)


def source_named(name: str) -> WebhookSource:
    db.session.expire_all()
    return db.session.scalars(db.select(WebhookSource).where(WebhookSource.name == name)).one()


def test_admin_creates_a_generic_source_whose_secret_is_shown_once_and_signs_webhooks(client, login_as, customer):
    login_as("admin", customers=[])
    page = client.post(LIST, data={"name": "ci", "kind": "generic", "customer": customer.id, "secret": ""})
    assert page.status_code == 200, page.text
    secret = shown_secret(page.text)
    source = source_named("ci")
    assert source.customer_id == customer.id and source.is_active
    assert secret not in source.secret_encrypted and webhook_sources.secret_of(source) == secret.encode()
    listing = client.get(LIST).text
    assert "ci" in listing and secret not in listing and "secret-once" not in listing
    assert "/api/v1/webhooks/generic?source=ci" in listing

    body = json.dumps({"title": "Nightly build failed", "severity": "high", "event_type": "job_failed"}).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    sent = client.post(
        "/api/v1/webhooks/generic?source=ci",
        data=body,
        content_type="application/json",
        headers={"X-OpsRelay-Signature": f"sha256={signature}", "X-OpsRelay-Timestamp": stamp},
    )
    assert sent.status_code in {200, 202}, sent.text  # the secret shown is the one that verifies


def test_a_pasted_secret_is_kept_and_never_shown_back(client, login_as):
    login_as("admin", customers=[])
    pasted = "whsec_pagerduty_0123456789abcdef"
    page = client.post(LIST, data={"name": "pd", "kind": "pagerduty", "customer": "", "secret": pasted})
    assert page.status_code == 200 and pasted not in page.text and "secret-once" not in page.text
    assert webhook_sources.secret_of(source_named("pd")) == pasted.encode()


def test_bad_input_is_shown_beside_the_field_and_stores_nothing(client, login_as):
    login_as("admin", customers=[])
    client.post(LIST, data={"name": "taken", "kind": "generic", "customer": ""})
    before = db.session.query(WebhookSource).count()
    dup = client.post(LIST, data={"name": "taken", "kind": "generic", "customer": ""})
    assert dup.status_code == 422 and "a source named &#39;taken&#39; already exists" in dup.text
    short = client.post(LIST, data={"name": "gh", "kind": "github", "customer": "", "secret": "short"})
    assert short.status_code == 422 and "use at least 16 characters" in short.text
    assert 'value="gh"' in short.text  # what was typed is kept (but not the secret)
    kind = client.post(LIST, data={"name": "x", "kind": "smtp", "customer": ""})
    assert kind.status_code == 422 and "Not a valid choice" in kind.text
    db.session.expire_all()
    assert db.session.query(WebhookSource).count() == before


def test_rotation_shows_a_new_secret_once_and_deactivation_stops_the_source(client, login_as):
    login_as("admin", customers=[])
    first = shown_secret(client.post(LIST, data={"name": "ops", "kind": "generic", "customer": ""}).text)
    source = source_named("ops")
    rotated = client.post(f"{LIST}/{source.id}/rotate")
    second = shown_secret(rotated.text)
    assert second != first and webhook_sources.secret_of(source_named("ops")) == second.encode()
    assert client.post(f"{LIST}/{source.id}/deactivate").status_code == 302
    assert source_named("ops").is_active is False
    assert webhook_sources.active("generic", name="ops") == []
    actions = set(db.session.scalars(db.select(AuditLog.action)))
    assert {"webhook_source.create", "webhook_source.secret", "webhook_source.deactivate"} <= actions


def test_operators_see_their_customers_sources_and_change_none(client, login_as, customer, make_customer):
    other = make_customer("Other Co")
    mine = webhook_sources.create(name="mine", kind="generic", customer=customer, secret=None)
    webhook_sources.create(name="theirs", kind="generic", customer=other, secret=None)
    db.session.commit()
    login_as("operator", customers=[customer])
    listing = client.get(LIST).text
    assert "mine" in listing and "theirs" not in listing and "Create source" not in listing
    assert client.post(LIST, data={"name": "new", "kind": "generic", "customer": customer.id}).status_code == 403
    assert client.post(f"{LIST}/{mine.id}/rotate").status_code == 403
    assert client.post(f"{LIST}/{mine.id}/deactivate").status_code == 403
    assert source_named("mine").is_active and source_named("mine").secret_encrypted is None
    assert db.session.query(WebhookSource).count() == 2


def test_viewers_neither_see_the_list_nor_create(client, login_as, customer):
    """Issue 18: a customer's viewer sees none of the wiring (sources, their URLs and secrets' state)."""
    login_as("viewer", customers=[customer])
    assert client.get(LIST).status_code == 403
    assert client.post(LIST, data={"name": "v", "kind": "generic", "customer": customer.id}).status_code == 403
