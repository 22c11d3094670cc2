"""POST /api/v1/webhooks/generic: signed per source (timestamped, replay-proof) or unsigned by choice."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from webapp.extensions import db
from webapp.models import Event, Notification, Ticket
from webapp.services.integrations import webhook_sources

URL = "/api/v1/webhooks/generic"
SECRET = "automation-secret-0123456789"
JOB = {
    "title": "Nightly config backup failed on 3 devices",
    "description": "core-sw-1, core-sw-2, edge-fw-1 timed out",
    "severity": "high",
    "event_type": "job_failed",
    "job_type": "config_backup",
    "job_url": "https://automation.example.com/jobs/8812",
}


def post(client, body, *, source="automation", secret=SECRET, stamp=None, headers=None, **kwargs):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {}
    if source:
        sent["X-OpsRelay-Source"] = source
    if secret:
        stamp = str(int(time.time())) if stamp is None else str(stamp)
        digest = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        sent.update({"X-OpsRelay-Signature": "sha256=" + digest, "X-OpsRelay-Timestamp": stamp})
    kwargs.setdefault("content_type", "application/json")
    return client.post(URL, data=raw, headers={**sent, **(headers or {})}, **kwargs)


@pytest.fixture
def source(app, customer):
    source = webhook_sources.create(name="automation", kind="generic", customer=customer, secret=SECRET)
    db.session.commit()
    return source


def test_test_endpoint_says_it_is_alive(client):
    response = client.get("/api/v1/webhooks/test")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert {"alertmanager", "pagerduty", "github", "generic"} <= set(response.json["sources"])


def test_signed_job_report_becomes_an_event_of_the_source_customer(client, source, customer):
    response = post(client, JOB)
    assert response.status_code == 200, response.json
    event = db.session.scalars(db.select(Event)).one()
    assert (event.source, event.event_type, event.status, event.severity) == (
        "generic",
        "job_failed",
        "firing",
        "high",
    )  # a failure fires until resolved
    assert (event.job_type, event.customer_id) == ("config_backup", customer.id)
    assert event.data["job_url"] == "https://automation.example.com/jobs/8812"
    assert response.json["event_ids"] == [event.id]


def test_signature_found_without_naming_the_source(client, source):
    assert post(client, JOB, source=None).status_code == 200


def test_create_ticket_when_asked(client, source, customer, route):
    response = post(client, {**JOB, "create_ticket": True, "dedup_key": "backup-2026-11-26"})
    assert response.status_code == 200 and response.json["routing"] == "queued"
    route()  # the routing job opens the ticket for the incident the event opened
    ticket = db.session.scalars(db.select(Ticket)).one()
    assert ticket.key == "OPS-1"
    assert (ticket.customer_id, ticket.title, ticket.priority) == (customer.id, JOB["title"], "high")
    # The sender retries later (a new signature): the dedup key makes it the same event.
    again = post(client, {**JOB, "create_ticket": True, "dedup_key": "backup-2026-11-26"}, stamp=int(time.time()) - 5)
    assert again.json["duplicates"] == 1
    route()
    assert db.session.scalar(db.select(db.func.count(Ticket.id))) == 1


def test_bad_missing_stale_and_replayed_signatures_are_refused(client, source):
    assert post(client, JOB, secret="not-the-secret-0123456789").status_code == 401
    missing = post(client, JOB, secret=None)
    assert missing.status_code == 401 and "X-OpsRelay-Signature" in missing.json["error"]["message"]
    stale = post(client, JOB, stamp=int(time.time()) - 3600)
    assert stale.status_code == 401 and "stale" in stale.json["error"]["message"]
    stamp = int(time.time())
    assert post(client, JOB, stamp=stamp).status_code == 200
    replay = post(client, JOB, stamp=stamp)
    assert replay.status_code == 409 and "replay" in replay.json["error"]["message"]
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 1


def test_unknown_source_and_no_credentials_are_401(client, source):
    assert post(client, JOB, source="nobody", secret=None).status_code == 401
    anonymous = post(client, JOB, source=None, secret=None)
    assert anonymous.status_code == 401 and "Name your source" in anonymous.json["error"]["message"]


def test_an_unsigned_source_is_accepted_when_the_admin_chose_so(client, customer):
    webhook_sources.create(name="lab", kind="generic", customer=customer, secret=None)
    db.session.commit()
    response = client.post(URL + "?source=lab", json={"title": "Lab test", "severity": "low"})
    assert response.status_code == 200
    assert db.session.scalars(db.select(Event)).one().title == "Lab test"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": "x", "severity": "apocalyptic"}, "severity"),
        ({"title": "x", "event_type": "party"}, "event_type"),
        ({"title": "x", "job_url": "javascript:alert(1)"}, "job_url"),
        ({"title": "x", "labels": {"a": 1}}, "labels"),
        ({"title": "x", "create_ticket": "yes"}, "create_ticket"),
        ({"title": "x", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_fields_are_422_and_store_nothing(client, source, body, field):
    response = post(client, body)
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 0


def test_malformed_wrong_type_oversized_wrong_method(client, app, source):
    assert post(client, b'{"title": ').status_code == 400
    assert post(client, b"[1]").status_code == 400
    assert post(client, b"title=x", content_type="application/x-www-form-urlencoded").status_code == 415
    assert post(client, b'{"t": "' + b"x" * app.config["MAX_CONTENT_LENGTH"] + b'"}').status_code == 413
    assert client.delete(URL).status_code == 405
    assert db.session.scalar(db.select(db.func.count(Notification.id))) == 0


def test_a_ticket_needs_a_customer(client):
    webhook_sources.create(name="global", kind="generic", customer=None, secret=None)
    db.session.commit()
    response = client.post(URL + "?source=global", json={"title": "x", "create_ticket": True})
    assert response.status_code == 422
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 0


def test_another_customers_sender_cannot_swallow_an_alert_by_reusing_its_dedup_key(
    client, source, customer, make_customer, make_user, route
):
    """The attack: a customer's sender posts first with the dedup key it expects another customer to use; that
    customer's alert must still be stored and page its people, and each redelivery stays a duplicate."""
    other = make_customer("Globex")
    theirs = webhook_sources.create(name="globex-ci", kind="generic", customer=other, secret="globex-secret-0123456789")
    db.session.commit()
    ours = make_user("admin", customers=[])
    body = {**JOB, "severity": "critical", "dedup_key": "nightly-backup"}
    first = post(client, body, source=theirs.name, secret="globex-secret-0123456789")
    assert first.status_code == 200 and first.json["new_events"] == 1
    mine = post(client, body)
    assert mine.status_code == 200 and (mine.json["new_events"], mine.json["duplicates"]) == (1, 0)
    again = post(client, body, stamp=int(time.time()) - 3)
    assert (again.json["new_events"], again.json["duplicates"]) == (0, 1)
    route()
    events = db.session.scalars(db.select(Event).order_by(Event.id)).all()
    assert [e.customer_id for e in events] == [other.id, customer.id]
    assert {e.incident_id for e in events} == {events[0].incident_id, events[1].incident_id} and len(
        {e.incident_id for e in events}
    ) == 2
    paged = db.session.scalars(
        db.select(Notification).where(Notification.event_id == events[1].id, Notification.user_id == ours.id)
    ).all()
    assert paged, "the second customer's alert paged nobody"
