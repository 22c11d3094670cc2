"""Outgoing webhooks: fan-out on ingest, signature checked by a receiver built from the README, retries, pause."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from tests.conftest import load_fixture, run_routing_jobs
from tests.routing_helpers import decided
from tests.webhook_receiver import Receiver, readme_verifier
from webapp.channels.webhook_http import signature
from webapp.extensions import db
from webapp.models import Channel, Notification, WebhookDelivery, WebhookEndpoint, utcnow
from webapp.models import NotificationStatus as S
from webapp.security import encrypt_secret
from webapp.services.delivery import attempts

SECRET = "whsec-test-0123456789"


@pytest.fixture
def receiver():
    server = Receiver(SECRET)
    yield server
    server.stop()


def endpoint(url: str, *, secret: str = SECRET, **fields) -> WebhookEndpoint:
    row = WebhookEndpoint(
        name=fields.pop("name", "Status page"), url=url, secret_encrypted=encrypt_secret(secret), **fields
    )
    db.session.add(row)
    db.session.commit()
    return row


def post_alert(client, fixture="webhooks/alertmanager_firing.json"):
    response = client.post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture(fixture),
        headers={"Authorization": "Bearer test-alert-token"},
        content_type="application/json",
    )
    assert response.status_code == 200
    run_routing_jobs(client.application)  # its routing job fans out to the endpoints, as a worker does right after
    return response


def webhook_rows() -> list[Notification]:
    return list(
        db.session.scalars(
            db.select(Notification).where(Notification.channel == Channel.WEBHOOK).order_by(Notification.id)
        )
    )


def wait_and_drain(drain, notification: Notification) -> None:
    if notification.status == S.QUEUED and notification.next_attempt_at:
        due = attempts.retry_job_time(notification.next_attempt_at)
        time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.1)
    drain()


def test_subscribed_endpoints_get_a_signed_post_that_the_readme_receiver_accepts(
    client, receiver, make_customer, drain
):
    everything = endpoint(receiver.url)
    endpoint(receiver.url, name="Tickets only", event_types=["ticket.created"])
    endpoint(receiver.url, name="Another customer's", customer_id=make_customer("Globex").id)
    endpoint(receiver.url, name="Paused", paused_at=utcnow(), paused_reason="manual")
    endpoint(receiver.url, name="Disabled", is_active=False)
    response = post_alert(client)
    assert decided(response.json["event_ids"]) == {"queued": 1}  # no admins in this test: the webhook only
    drain()

    [row] = webhook_rows()
    assert row.webhook_endpoint_id == everything.id and row.status == S.SENT
    [request] = receiver.accepted
    assert receiver.rejected == 0
    assert request["headers"]["X-OpsRelay-Event"] == "incident.triggered"
    assert request["headers"]["X-OpsRelay-Delivery"] == str(row.id)
    assert request["headers"]["X-OpsRelay-Signature"].startswith("sha256=")
    body = json.loads(request["body"])
    assert body["event"] == "incident.triggered"
    assert body["data"]["title"] == "DiskFull" and body["data"]["severity"] == "critical"
    [attempt] = db.session.scalars(db.select(WebhookDelivery)).all()
    assert (attempt.endpoint_id, attempt.success, attempt.status_code, attempt.attempt) == (everything.id, True, 200, 1)
    assert attempt.latency_ms is not None and attempt.response_excerpt == "ok"


def test_the_readme_example_refuses_a_wrong_secret_a_changed_body_and_an_old_timestamp():
    verify = readme_verifier()
    body = b'{"event":"event.created"}'
    now = str(int(time.time()))
    good = {"X-OpsRelay-Timestamp": now, "X-OpsRelay-Signature": signature(SECRET, now, body)}
    assert verify(SECRET, good, body)
    assert not verify("another-secret", good, body)
    assert not verify(SECRET, good, body + b" ")
    old = str(int(time.time()) - 600)
    assert not verify(SECRET, {"X-OpsRelay-Timestamp": old, "X-OpsRelay-Signature": signature(SECRET, old, body)}, body)
    assert not verify(SECRET, {}, body)


def test_a_receiver_with_another_secret_refuses_and_the_delivery_fails_with_its_answer(client, receiver, drain):
    endpoint(receiver.url, secret="not-what-the-receiver-expects")
    post_alert(client)
    drain()
    [row] = webhook_rows()
    assert row.status == S.FAILED and row.error_code == "401"  # a 4xx is not retried
    assert receiver.rejected == 1 and receiver.accepted == []
    [attempt] = db.session.scalars(db.select(WebhookDelivery)).all()
    assert attempt.status_code == 401 and attempt.error.startswith("HTTP 401")
    assert attempt.response_excerpt == "refused with 401"


def test_server_errors_are_retried_and_every_attempt_recorded(client, receiver, drain):
    hook = endpoint(receiver.url)
    receiver.fail_next(503, times=2)
    post_alert(client)
    drain()
    [row] = webhook_rows()
    for _ in range(3):
        wait_and_drain(drain, row)
    assert row.status == S.SENT and row.attempts == 3
    attempts = db.session.scalars(db.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(a.attempt, a.status_code, a.success) for a in attempts] == [
        (1, 503, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert len(receiver.accepted) == 1
    db.session.refresh(hook)
    assert hook.consecutive_failures == 0 and hook.paused_at is None


def test_an_endpoint_that_keeps_failing_is_paused_with_the_reason(app, client, receiver, drain):
    app.config.update(WEBHOOK_PAUSE_AFTER_FAILURES=3, DELIVERY_MAX_ATTEMPTS=10)
    hook = endpoint(receiver.url)
    receiver.fail_next(500, times=100)
    post_alert(client)
    [row] = webhook_rows()
    waiting = Notification(  # another delivery for the endpoint, due later
        channel=Channel.WEBHOOK,
        webhook_endpoint_id=hook.id,
        recipient=hook.url,
        body=row.body,
        status=S.QUEUED,
        next_attempt_at=utcnow() + timedelta(hours=1),
    )
    db.session.add(waiting)
    db.session.commit()
    drain()
    for _ in range(3):
        wait_and_drain(drain, row)
    db.session.refresh(hook)
    assert hook.paused_at is not None
    assert hook.paused_reason.startswith("paused after 3 consecutive failed deliveries; last: HTTP 500")
    assert receiver.requests == 3 and row.attempts == 3
    assert row.status == S.FAILED and "endpoint paused after 3 consecutive failures" in row.error_message
    assert waiting.status == S.SUPPRESSED
    assert waiting.reason.startswith("webhook endpoint paused: paused after 3 consecutive failed deliveries")
    assert db.session.scalar(db.select(db.func.count(WebhookDelivery.id))) == 3

    post_alert(client, "webhooks/alertmanager_seed_example.json")  # paused: no new deliveries for it
    assert len(webhook_rows()) == 2


def test_a_long_pause_reason_is_cut_at_a_word_not_mid_word(app, customer):
    from webapp.services.delivery.sending import pause_endpoint

    endpoint = WebhookEndpoint(customer_id=customer.id, name="Chat", url="https://a.example.com", secret_encrypted="x")
    db.session.add(endpoint)
    db.session.flush()
    pause_endpoint(endpoint, "paused after 5 consecutive failed deliveries; last: " + "connection refused " * 30)
    reason = endpoint.paused_reason
    assert len(reason) <= 300 and reason.endswith("refused …")
    db.session.rollback()
