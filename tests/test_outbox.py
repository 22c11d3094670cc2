"""The outbox: what a transaction asks for reaches the queue when it commits, never before, never after a rollback.

A ticket created from the admin page, through the API or by a PagerDuty webhook has its notifications on the
queue at that request's commit: one drain of the worker delivers them, with no recovery sweep in between.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.conftest import load_fixture
from tests.webhook_receiver import Receiver
from webapp import outbox
from webapp.api.access import new_key
from webapp.extensions import db
from webapp.models import ApiKey, Channel, Notification, NotificationStatus, Role, WebhookEndpoint
from webapp.queue import DELIVERIES, get_queue
from webapp.security import encrypt_secret, hash_api_key
from webapp.services.integrations import webhook_sources

SECRET = "whsec-outbox-0123456789"
PD_SECRET = "pagerduty-outbox-secret-42"


@pytest.fixture
def receiver():
    server = Receiver(SECRET)
    yield server
    server.stop()


@pytest.fixture
def ticket_hook(receiver, customer):
    """An outgoing endpoint of the customer that wants ticket.created (and nothing else)."""
    row = WebhookEndpoint(
        customer_id=customer.id,
        name="Ticket feed",
        url=receiver.url,
        secret_encrypted=encrypt_secret(SECRET),
        event_types=["ticket.created"],
    )
    db.session.add(row)
    db.session.commit()
    return row


def row_ids(job) -> list[int]:
    """The notification ids a delivery job carries: `deliver(id)` or `deliver_batch(ids)`."""
    return list(job.args[0]) if isinstance(job.args[0], list) else [job.args[0]]


def queued_job_ids(app) -> list[int]:
    """The notification ids of the deliver jobs waiting on the queue."""
    queue = get_queue(app).queues[DELIVERIES]
    return sorted(i for job in queue.jobs for i in row_ids(job))


def webhook_rows() -> list[Notification]:
    query = db.select(Notification).where(Notification.channel == Channel.WEBHOOK).order_by(Notification.id)
    return list(db.session.scalars(query))


def assert_delivered_after_one_drain(app, drain, receiver, title: str) -> None:
    [row] = webhook_rows()
    pending = db.select(Notification.id).where(Notification.status == NotificationStatus.PENDING)
    assert row.id in queued_job_ids(app) == sorted(db.session.scalars(pending))  # at the commit: no sweep ran
    drain()
    assert row.status == NotificationStatus.SENT
    [request] = receiver.accepted
    body = json.loads(request["body"])
    assert body["event"] == "ticket.created" and title in body["data"]["title"]


def test_a_ticket_created_on_the_admin_page_is_delivered_at_commit(
    app, client, login_as, customer, ticket_hook, receiver, drain
):
    login_as("operator")  # of the customer
    answer = client.post("/tickets/new", data={"customer": customer.id, "title": "Printer on fire", "priority": "high"})
    assert answer.status_code == 302
    assert_delivered_after_one_drain(app, drain, receiver, "Printer on fire")


def test_a_ticket_created_through_the_api_is_delivered_at_commit(app, client, customer, ticket_hook, receiver, drain):
    key, prefix = new_key()
    db.session.add(
        ApiKey(name="t", prefix=prefix, key_hash=hash_api_key(key), scopes=["write"], customer_id=customer.id)
    )
    db.session.commit()
    answer = client.post(
        "/api/v1/tickets", json={"title": "Backups late", "priority": "normal"}, headers={"X-API-Key": key}
    )
    assert answer.status_code == 201, answer.json
    assert_delivered_after_one_drain(app, drain, receiver, "Backups late")


def test_a_ticket_opened_by_a_pagerduty_webhook_is_delivered_at_commit(
    app, client, customer, ticket_hook, receiver, drain, route
):
    webhook_sources.create(name="pd", kind="pagerduty", customer=customer, secret=PD_SECRET, create_tickets=True)
    db.session.commit()
    raw = load_fixture("webhooks/pagerduty_incident_triggered.json")
    signature = "v1=" + hmac.new(PD_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    answer = client.post(
        "/api/v1/webhooks/pagerduty",
        data=raw,
        headers={"X-PagerDuty-Signature": signature},
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer.json["routing"] == "queued"  # its job opens the ticket
    assert route() == 1  # the ticket's outgoing webhook is handed over at the routing job's commit
    title = json.loads(raw)["event"]["data"]["title"]
    assert_delivered_after_one_drain(app, drain, receiver, title)


def test_nothing_reaches_the_queue_before_the_commit_and_a_rollback_drops_it(app, make_user):
    user = make_user(Role.ADMIN)
    row = Notification(user_id=user.id, channel=Channel.WEB, body="x", status=NotificationStatus.PENDING)
    db.session.add(row)
    db.session.flush()
    outbox.deliver([row.id])
    assert outbox.waiting() == [("webapp.jobs.deliver", (row.id,))]
    assert queued_job_ids(app) == []  # the row is not visible to a worker yet: no job either
    db.session.rollback()
    assert outbox.waiting() == []
    db.session.commit()  # a later, empty transaction does not resurrect it
    assert queued_job_ids(app) == []


def test_the_commit_hands_over_what_the_transaction_asked_for_once(app, make_user):
    user = make_user(Role.ADMIN)
    row = Notification(user_id=user.id, channel=Channel.WEB, body="x", status=NotificationStatus.PENDING)
    db.session.add(row)
    db.session.flush()
    outbox.deliver([row.id])
    db.session.commit()
    assert queued_job_ids(app) == [row.id]
    db.session.commit()  # nothing left to hand over
    assert queued_job_ids(app) == [row.id]


def test_with_the_queue_down_the_commit_keeps_the_rows_for_the_sweep(make_app, make_user):
    user = make_user(Role.ADMIN)
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    with down.app_context():
        row = Notification(user_id=user.id, channel=Channel.WEB, body="x", status=NotificationStatus.PENDING)
        db.session.add(row)
        db.session.flush()
        outbox.deliver([row.id])
        db.session.commit()  # the push fails (logged); the commit stands
        row_id = row.id
        db.session.remove()
    assert db.session.get(Notification, row_id).status == NotificationStatus.PENDING
