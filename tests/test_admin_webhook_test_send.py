"""Send test on an outgoing webhook endpoint: a signed `test` delivery reaching the receiver, watched on the page."""

from __future__ import annotations

import json

import pytest

from tests.webhook_receiver import Receiver
from webapp.extensions import db
from webapp.models import Channel, Notification, WebhookDelivery
from webapp.services.integrations import endpoints


@pytest.fixture
def made(app, customer, make_user):
    actor = make_user("admin", customers=[])
    endpoint, secret = endpoints.create_endpoint(
        customer=customer,
        name="Receiver",
        url="http://127.0.0.1:9/unused",
        event_types=["ticket.created"],
        is_active=True,
        actor=actor,
    )
    db.session.commit()
    receiver = Receiver(secret)
    endpoint.url = receiver.url
    db.session.commit()
    yield endpoint, receiver
    receiver.stop()


def test_send_test_reaches_the_receiver_signed_and_the_page_shows_its_outcome(client, login_as, customer, made, drain):
    endpoint, receiver = made
    login_as("operator", customers=[customer])
    answer = client.post(f"/integrations/webhooks/{endpoint.id}/test")
    notification = db.session.scalars(db.select(Notification)).one()
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"/integrations/webhooks/{endpoint.id}?watch={notification.id}"
    assert notification.channel == Channel.WEBHOOK and notification.webhook_endpoint_id == endpoint.id
    page = client.get(answer.headers["Location"]).text
    assert f"/deliveries/{notification.id}/status" in page and "watch-send.js" in page

    drain()
    assert len(receiver.accepted) == 1  # the README's verifier accepted the signature
    assert json.loads(receiver.accepted[0]["body"])["event"] == "test"  # sent despite subscribing to tickets only
    status = client.get(f"/deliveries/{notification.id}/status").get_json()
    assert status["status"] == "sent", status
    attempt = db.session.scalars(db.select(WebhookDelivery)).one()
    assert attempt.success and attempt.event_type == "test"
    assert "test" in client.get(f"/integrations/webhooks/{endpoint.id}").text


def test_a_failing_receiver_shows_its_answer_and_the_retry(client, login_as, customer, made, drain):
    endpoint, receiver = made
    receiver.fail_next(500, times=10)
    login_as("admin", customers=[])
    client.post(f"/integrations/webhooks/{endpoint.id}/test")
    drain()
    notification = db.session.scalars(db.select(Notification)).one()
    status = client.get(f"/deliveries/{notification.id}/status").get_json()
    assert status["status"] == "queued" and status["error_code"] == "500"  # a 500 is retried
    assert "HTTP 500 Internal Server Error" in status["error_message"]
    assert any("temporary error (500)" in line for line in status["explanation"])


def test_viewers_and_other_customers_cannot_send_tests(client, login_as, customer, make_customer, made):
    endpoint, _ = made
    login_as("viewer", customers=[customer])
    assert client.post(f"/integrations/webhooks/{endpoint.id}/test").status_code == 403
    client.post("/logout")
    login_as("operator", customers=[make_customer("Other Co")])
    assert client.post(f"/integrations/webhooks/{endpoint.id}/test").status_code == 404
    db.session.expire_all()
    assert db.session.query(Notification).count() == 0
