"""POST /api/v1/webhooks/pagerduty: v3 signatures (rotation included), incidents to events and tickets."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json

import pytest

from tests.conftest import load_fixture
from webapp.extensions import db
from webapp.models import AuditLog, Event, Notification, Ticket, TicketStatus, WebhookSource
from webapp.services.integrations import webhook_sources

URL = "/api/v1/webhooks/pagerduty"
SECRET = "pagerduty-secret-0123456789"
OLD_SECRET = "pagerduty-old-secret-98765"


def sign(body: bytes, *secrets: str) -> str:
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)


def payload(event_type: str = "incident.triggered", **changes) -> dict:
    data = json.loads(load_fixture("webhooks/pagerduty_incident_triggered.json"))
    data["event"]["event_type"] = event_type
    data["event"]["id"] = changes.pop("event_id", data["event"]["id"] + event_type)
    for key, value in changes.items():
        data["event"]["data"][key] = value
    return data


def post(client, body, *secrets, headers=None, content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"X-PagerDuty-Signature": sign(raw, *secrets)} if secrets else {}
    return client.post(URL, data=raw, headers={**sent, **(headers or {})}, content_type=content_type)


@pytest.fixture
def source(app, customer):
    source = webhook_sources.create(
        name="pd-acme", kind="pagerduty", customer=customer, secret=SECRET, create_tickets=True
    )
    db.session.commit()
    return source


def test_secret_is_stored_encrypted(source):
    row = db.session.get(WebhookSource, source.id)
    assert SECRET not in row.secret_encrypted
    assert webhook_sources.secret_of(row) == SECRET.encode()
    assert db.session.scalar(db.select(AuditLog.action).where(AuditLog.target_type == "webhooksource")) == (
        "webhook_source.create"
    )


def test_triggered_incident_creates_an_event_and_a_ticket_then_ack_and_resolve_update_them(
    client, source, customer, route
):
    response = post(client, payload(), SECRET)
    assert response.status_code == 200, response.json
    assert response.json["new_events"] == 1 and response.json["routing"] == "queued"
    route()  # the routing job opens the incident and its ticket (the source's follow-up)
    event = db.session.scalars(db.select(Event).where(Event.source == "pagerduty")).one()  # beside ticket_created
    assert (event.source, event.dedup_key, event.status, event.severity) == (
        "pagerduty",
        "PGR0VU2",
        "firing",
        "critical",
    )
    assert event.title == "Checkout latency above 2 s"
    assert event.customer_id == customer.id
    assert event.data["html_url"] == "https://acme.pagerduty.com/incidents/PGR0VU2"
    ticket = db.session.get(Ticket, event.ticket_id)
    assert (ticket.key, ticket.customer_id, ticket.priority, ticket.status) == ("OPS-1", customer.id, "urgent", "open")

    assert post(client, payload("incident.acknowledged"), SECRET).status_code == 200
    route()
    acknowledged = db.session.scalars(db.select(Event).where(Event.status == "acknowledged")).one()
    assert acknowledged.ticket_id == ticket.id  # OPS-1
    assert post(client, payload("incident.priority_updated", priority={"summary": "P3"}), SECRET).status_code == 200
    route()
    assert post(client, payload("incident.resolved"), SECRET).status_code == 200
    route()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.status == TicketStatus.RESOLVED
    assert ticket.priority == "normal"
    assert ticket.acknowledged_at is not None
    kinds = [entry.kind for entry in ticket.timeline]
    assert kinds == ["status", "acknowledged", "priority", "status"]
    statuses = sorted(str(e.status) for e in db.session.scalars(db.select(Event).where(Event.source != "ticket")))
    assert statuses == ["acknowledged", "firing", "info", "resolved"]


def test_replayed_delivery_stores_nothing_twice(client, source, route):
    body = json.dumps(payload()).encode()
    assert post(client, body, SECRET).json["new_events"] == 1
    route()
    again = post(client, body, SECRET)
    assert again.status_code == 200
    assert again.json == {**again.json, "new_events": 0, "duplicates": 1, "routing": "none"}
    assert route() == 0
    assert db.session.scalar(db.select(db.func.count(Ticket.id))) == 1


def test_rotation_header_with_several_signatures_is_valid_if_any_matches(client, source):
    response = post(client, payload(), OLD_SECRET, SECRET)
    assert response.status_code == 200, response.json
    assert response.json["source"] == "pd-acme"


def test_bad_missing_or_malformed_signature_is_401_and_stores_nothing(client, source):
    assert post(client, payload(), OLD_SECRET).status_code == 401
    missing = post(client, payload())
    assert missing.status_code == 401
    assert "X-PagerDuty-Signature" in missing.json["error"]["message"]
    garbage = post(client, payload(), headers={"X-PagerDuty-Signature": "v0=abc, nonsense"})
    assert garbage.status_code == 401
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 0


def test_inactive_source_no_longer_accepts(client, source):
    source.is_active = False
    db.session.commit()
    assert post(client, payload(), SECRET).status_code == 401


def test_without_create_tickets_only_the_event_is_stored(client, customer, route):
    webhook_sources.create(name="pd-quiet", kind="pagerduty", customer=customer, secret=SECRET)
    db.session.commit()
    response = post(client, payload(), SECRET)
    assert response.json["new_events"] == 1 and route() == 1
    assert db.session.scalars(db.select(Event)).one().incident_id is not None  # routed: its incident opened
    assert db.session.scalar(db.select(db.func.count(Ticket.id))) == 0


def test_other_event_types_are_accepted_and_ignored(client, source):
    response = post(client, payload("incident.annotated"), SECRET)
    assert response.status_code == 202
    assert "ignored" in response.json["message"]
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "nope"}, "event"),
        ({"event": {"event_type": 5}}, "event.event_type"),
        ({"event": {"id": "E1", "event_type": "incident.triggered", "data": {"id": "P1"}}}, "event.data.title"),
    ],
)
def test_wrong_shapes_are_422_naming_the_field(client, source, body, field):
    response = post(client, body, SECRET)
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]


def test_malformed_json_wrong_type_oversized_and_wrong_method(client, app, source):
    bad = b'{"event": '
    assert post(client, bad, SECRET).status_code == 400
    assert post(client, b"a=b", SECRET, content_type="application/x-www-form-urlencoded").status_code == 415
    big = b'{"pad": "' + b"x" * app.config["MAX_CONTENT_LENGTH"] + b'"}'
    assert post(client, big, SECRET).status_code == 413
    wrong = client.get(URL)
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"
    assert db.session.scalar(db.select(db.func.count(Notification.id))) == 0


def test_parser_is_pure_and_registered():
    from webapp.sources import PARSERS

    data = payload()
    before = copy.deepcopy(data)
    items = PARSERS["pagerduty"](data)
    assert data == before
    assert [(i.dedup_key, i.status, i.labels["service"]) for i in items] == [("PGR0VU2", "firing", "Checkout API")]
