"""POST /api/v1/routing/preview (the dry run) and GET /api/v1/users/<id>/explain?event=<id> (why not)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest

from tests.conftest import load_fixture
from tests.routing_helpers import fire, prefer, rows
from webapp.api import routing as routing_api
from webapp.api import users as users_api
from webapp.api.access import issue_token, new_key
from webapp.extensions import db
from webapp.models import ApiKey, Event, Notification, PhoneNumber, Role, Severity, utcnow
from webapp.security import hash_api_key
from webapp.services.routing import digest

PREVIEW = "/api/v1/routing/preview"
ALERT_AUTH = {"Authorization": "Bearer test-alert-token"}


@pytest.fixture
def key_for(app, make_user):
    def make(scopes=("write",), customer=None):
        key, prefix = new_key()
        owner = make_user(Role.ADMIN, customers=[])
        db.session.add(
            ApiKey(
                name="t",
                prefix=prefix,
                key_hash=hash_api_key(key),
                scopes=list(scopes),
                customer_id=customer.id if customer else None,
                created_by_id=owner.id,
            )
        )
        db.session.commit()
        return {"X-API-Key": key}

    return make


def counts():
    return (
        db.session.scalar(db.select(db.func.count(Event.id))),
        db.session.scalar(db.select(db.func.count(Notification.id))),
    )


def table(decisions):
    return sorted((d["user"]["id"], d["channel"], d["decision"], d["reason"]) for d in decisions)


def stored():
    return sorted(
        (n.user_id, str(n.channel), "pending" if n.status in ("queued", "sending") else str(n.status), n.reason)
        for n in db.session.scalars(db.select(Notification))
    )


def people(make_user, customer):
    paged = make_user("admin", phone="+14155550101", customers=[])
    make_user("admin", customers=[])  # no phone
    opted = make_user("admin", phone="+14155550109", opted_out=True, customers=[])
    number = db.session.scalars(db.select(PhoneNumber).where(PhoneNumber.user_id == opted.id)).one()
    number.opted_out_at, number.opted_out_via = utcnow(), "SMS reply STOP"
    web_only = make_user("admin", customers=[])
    prefer(web_only, enabled_channels=["web"])
    make_user("operator", phone="+14155550102")
    make_user("viewer")
    db.session.commit()
    return paged


def test_dry_run_of_an_alertmanager_payload_matches_what_the_real_webhook_then_does(
    client, make_user, customer, key_for, twilio, route
):
    headers = key_for()  # its owner is one more admin, without a phone
    people(make_user, customer)
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    preview = client.post(PREVIEW, json={"source": "alertmanager", "payload": payload}, headers=headers)
    assert preview.status_code == 200, preview.json
    assert counts() == (0, 0) and twilio.received == []  # nothing stored, nothing sent
    assert preview.json["events"][0]["title"] == "DiskFull"
    assert preview.json["summary"] == {"pending": 1, "suppressed": 5, "sent": 1}

    real = client.post("/api/v1/webhooks/alertmanager", json=payload, headers=ALERT_AUTH)
    assert real.status_code == 200
    route()  # the webhook's routing job decides as the preview said
    assert table(preview.json["decisions"]) == stored()

    again = client.post(PREVIEW, json={"source": "alertmanager", "payload": payload}, headers=headers)
    assert again.json["events"][0]["duplicate_of"] == real.json["event_ids"][0]
    assert again.json["decisions"] == []  # a redelivery notifies nobody


def test_dry_run_of_a_direct_event_matches_real_routing(client, make_user, customer, key_for):
    headers = key_for()
    people(make_user, customer)
    body = {"event": {"type": "alert", "severity": "high", "customer": "Acme Corp", "title": "HighLatency"}}
    preview = client.post(PREVIEW, json=body, headers=headers)
    assert preview.status_code == 200, preview.json
    decisions = preview.json["decisions"]
    assert {d["decision"] for d in decisions} == {"sent", "pending", "suppressed"}
    assert all(d["when"] for d in decisions if d["decision"] != "suppressed")
    fire(severity="high", customer=customer, title="HighLatency")
    assert table(decisions) == stored()


def test_dry_run_shows_quiet_hours_with_when(client, make_user, customer, key_for):
    headers = key_for()
    user = make_user("operator", phone="+14155550101")
    prefer(user, quiet_hours_start=time(22), quiet_hours_end=time(7))
    body = {"event": {"type": "alert", "severity": "high", "customer": customer.id}, "at": "2026-11-26T23:00:00Z"}
    decisions = client.post(PREVIEW, json=body, headers=headers).json["decisions"]
    email = next(d for d in decisions if d["channel"] == "email")
    assert (email["decision"], email["hold"], email["when"]) == ("deferred", "quiet_hours", "2026-11-27T07:00:00+00:00")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "nagios", "payload": {}}, "source"),
        ({"source": "alertmanager", "payload": "x"}, "payload"),
        ({"source": "alertmanager", "payload": {"alerts": []}}, "alerts"),
        ({"event": {"type": "party"}}, "event.type"),
        ({"event": {"severity": "apocalyptic"}}, "event.severity"),
        ({"event": {"customer": "Nobody Inc"}}, "event.customer"),
        ({"event": {"customer": 3020454815931}}, "event.customer"),  # past the id column: no such customer
        ({"source": "alertmanager", "payload": {}, "customer": 2**40}, "customer"),
        ({"event": {"ticket": 2**40}}, "event.ticket"),
        ({"event": {"labels": {"a": 1}}}, "event.labels"),
        ({"event": {"colour": "red"}}, "event"),
        ({"event": {"ticket": 999}}, "event.ticket"),
        ({"event": {}, "at": "teatime"}, "at"),
        ({}, "event"),
    ],
)
def test_bad_preview_requests_are_422_naming_the_field_and_store_nothing(client, key_for, body, field):
    response = client.post(PREVIEW, json=body, headers=key_for())
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    assert counts() == (0, 0)


def test_preview_needs_write_scope_and_stays_in_the_keys_customers(client, key_for, make_customer, customer):
    other = make_customer("Globex")
    event = {"event": {"type": "alert", "customer": other.id}}
    assert client.post(PREVIEW, json=event).status_code == 401
    assert client.post(PREVIEW, json=event, headers=key_for(scopes=["read"])).status_code == 403
    scoped = key_for(customer=customer)
    assert client.post(PREVIEW, json=event, headers=scoped).status_code == 422  # no such customer for this key
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    customerless = client.post(PREVIEW, json={"source": "alertmanager", "payload": payload}, headers=scoped)
    assert customerless.status_code == 403
    ours = client.post(PREVIEW, json={"event": {"type": "alert", "customer": customer.id}}, headers=scoped)
    assert ours.status_code == 200


def test_explain_answers_every_channel_for_one_user_and_event(client, make_user, customer, key_for):
    headers = key_for(scopes=["read"])
    admin = make_user("admin", phone="+14155550109", opted_out=True)
    operator = make_user("operator", phone="+14155550102")
    prefer(operator, min_severity_sms=Severity.CRITICAL, enabled_channels=["web", "sms"])
    event = fire(severity="high", customer=customer)

    answer = client.get(f"/api/v1/users/{operator.id}/explain", query_string={"event": event.id}, headers=headers)
    assert answer.status_code == 200, answer.json
    by_channel = {c["channel"]: c for c in answer.json["channels"]}
    assert by_channel["web"]["status"] == "sent" and by_channel["web"]["recorded"]
    assert by_channel["email"]["reason"].startswith("email is disabled in notification preference #")
    assert by_channel["sms"]["reason"] == (
        "below the minimum severity for SMS: the event is high, SMS needs critical or above"
    )
    assert answer.json["rules"].startswith("notification preference #")

    # The admin's role default has no row for a high alert: the answer says why, without a row.
    admin_answer = client.get(f"/api/v1/users/{admin.id}/explain?event={event.id}", headers=headers).json
    sms = next(c for c in admin_answer["channels"] if c["channel"] == "sms")
    assert not sms["recorded"]
    assert sms["reason"].startswith("no SMS for a high alert event under the admin role's default")

    critical = fire(severity="critical", customer=customer)
    admin_sms = client.get(f"/api/v1/users/{admin.id}/explain?event={critical.id}", headers=headers).json
    assert (
        "opted out of SMS (number …0109)" in next(c for c in admin_sms["channels"] if c["channel"] == "sms")["reason"]
    )


def test_explain_of_a_digested_row_names_the_digest(client, make_user, customer, key_for):
    user = make_user("operator", phone="+14155550101")
    prefer(user, enable_aggregation=True, enabled_channels=["sms"], min_severity_sms=Severity.INFO)
    t0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
    first, _ = fire(customer=customer, now=t0), fire(customer=customer, now=t0)
    digest.release(now=t0 + timedelta(minutes=3))
    db.session.commit()
    answer = client.get(f"/api/v1/users/{user.id}/explain?event={first.id}", headers=key_for(scopes=["read"])).json
    sms = next(c for c in answer["channels"] if c["channel"] == "sms")
    assert sms["status"] == "suppressed" and sms["reason"].startswith("delivered in digest #")
    assert sms["digest"]["status"] == "pending"
    assert rows(first)[(user.id, "sms")].digest_id == sms["digest"]["id"]


def test_explain_is_scoped_and_validates_its_input(client, make_user, make_customer, customer, key_for):
    other = make_customer("Globex")
    stranger = make_user("operator", customers=[other])
    ours = make_user("operator")
    event = fire(customer=customer)
    scoped = key_for(scopes=["read"], customer=customer)
    assert client.get(f"/api/v1/users/{stranger.id}/explain?event={event.id}", headers=scoped).status_code == 404
    assert client.get(f"/api/v1/users/{ours.id}/explain", headers=scoped).status_code == 400
    assert client.get(f"/api/v1/users/{ours.id}/explain?event=abc", headers=scoped).status_code == 400
    assert client.get(f"/api/v1/users/{ours.id}/explain?event=999999", headers=scoped).status_code == 404
    assert client.get(f"/api/v1/users/{ours.id}/explain?event={2**54}", headers=scoped).status_code == 404
    theirs = fire(customer=other)
    assert client.get(f"/api/v1/users/{ours.id}/explain?event={theirs.id}", headers=scoped).status_code == 404
    answer = client.get(f"/api/v1/users/{stranger.id}/explain?event={event.id}", headers=key_for(scopes=["read"]))
    assert {c["reason"] for c in answer.json["channels"]} == {"not a member of customer Acme Corp"}


def test_api_modules_describe_their_endpoints_for_openapi():
    assert set(routing_api.OPENAPI_PATHS) == {"/api/v1/routing/preview"}
    assert set(users_api.OPENAPI_PATHS) == {"/api/v1/users/{user_id}/explain"}
    refs = json.dumps([routing_api.OPENAPI_PATHS, users_api.OPENAPI_PATHS])
    schemas = {**routing_api.OPENAPI_SCHEMAS, **users_api.OPENAPI_SCHEMAS}
    for name in schemas:
        assert f"#/components/schemas/{name}" in refs or name in json.dumps(schemas)


def test_a_user_token_explains_its_own_notifications_and_previews_its_customers(client, make_user, customer):
    operator = make_user("operator", phone="+14155550102")
    token, _ = issue_token(operator)
    headers = {"Authorization": f"Bearer {token}"}
    event = fire(severity="critical", customer=customer)
    mine = client.get(f"/api/v1/users/{operator.id}/explain?event={event.id}", headers=headers)
    assert mine.status_code == 200
    assert {c["channel"]: c["status"] for c in mine.json["channels"]} == {
        "web": "sent",
        "email": "pending",
        "sms": "pending",
        "voice": None,  # explained, not stored: no phone call under the operator's role default
    }
    preview = client.post(PREVIEW, json={"event": {"type": "alert", "customer": customer.id}}, headers=headers)
    assert preview.status_code == 200  # an operator's token has the write scope
    assert preview.json["decisions"] == []  # an info alert: nobody's default covers it


def test_explain_puts_membership_before_the_role_default(client, make_user, make_customer, key_for):
    other = make_customer("Globex")
    viewer = make_user("viewer", customers=[other])
    event = fire(severity="medium", customer=make_customer("Initech"))
    answer = client.get(f"/api/v1/users/{viewer.id}/explain?event={event.id}", headers=key_for(scopes=["read"]))
    assert {c["reason"] for c in answer.json["channels"]} == {"not a member of customer Initech"}


def test_dry_run_of_the_resolution_and_of_a_resend_follow_the_open_incident(
    client, make_user, customer, key_for, route
):
    """Alertmanager writes startsAt with sub-seconds while firing, whole seconds once resolved: the preview
    still finds the incident, so the paged admin would get the all-clear; a firing with a new startsAt while
    the incident is open is a resend that pages nobody."""
    headers = key_for()
    paged = make_user("admin", phone="+14155550101", customers=[])
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    payload["alerts"][0]["startsAt"] = "2026-11-26T03:12:00.48213Z"
    real = client.post("/api/v1/webhooks/alertmanager", json=payload, headers=ALERT_AUTH)
    assert real.status_code == 200
    route()
    resolved = json.loads(json.dumps(payload))
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["startsAt"] = "2026-11-26T03:12:00Z"
    resolved["alerts"][0]["endsAt"] = "2026-11-26T03:30:00Z"
    preview = client.post(PREVIEW, json={"source": "alertmanager", "payload": resolved}, headers=headers)
    assert preview.status_code == 200, preview.json
    mine = [d for d in preview.json["decisions"] if d["user"]["id"] == paged.id]
    assert [(d["channel"], d["decision"]) for d in mine] == [("sms", "pending")]
    assert "not notified when this alert fired" not in json.dumps(preview.json)

    payload["alerts"][0]["startsAt"] = "2026-11-26T04:00:00Z"
    resend = client.post(PREVIEW, json={"source": "alertmanager", "payload": payload}, headers=headers)
    assert resend.json["events"][0]["duplicate_of"] == real.json["event_ids"][0]
    assert resend.json["decisions"] == []
