"""/api/v1/incidents: the console's filters, cursor pages, tenant isolation, and ack / resolve with their one
effect (escalation stops, the others paged are told), driven through a real ingest, worker and loopback Twilio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webapp.api.access import new_key
from webapp.extensions import db
from webapp.models import (
    ApiKey,
    Event,
    EventStatus,
    Incident,
    Notification,
    Priority,
    Role,
    Severity,
    SlaPolicy,
    open_key,
    utcnow,
)
from webapp.security import hash_api_key
from webapp.services.events import ingest
from webapp.services.tickets import sla
from webapp.sources.normalised import NormalisedEvent

URL = "/api/v1/incidents"


@pytest.fixture
def make_key(app, make_user):
    """An API key; its owner is `owner` (an admin of no customer if not given), or nobody with owner=False."""

    def make(*, scopes=("write",), customer=None, owner=None):
        if owner is None:
            owner = make_user(Role.ADMIN, customers=[])
        key, prefix = new_key()
        db.session.add(
            ApiKey(
                name="t",
                prefix=prefix,
                key_hash=hash_api_key(key),
                scopes=list(scopes),
                customer_id=customer.id if customer else None,
                created_by_id=owner.id if owner else None,
            )
        )
        db.session.commit()
        return {"X-API-Key": key}

    return make


@pytest.fixture
def other(make_customer):
    return make_customer("Globex")


def add_incident(customer, title: str, *, state="triggered", severity="high", source="alertmanager", labels=None):
    now = utcnow()
    incident = Incident(
        customer_id=customer.id if customer else None,
        source=source,
        key=title,
        open_key=open_key(source, customer.id if customer else None, title) if state != "resolved" else None,
        state=state,
        severity=Severity(severity),
        severity_rank=Severity(severity).rank,
        title=title,
        labels=labels or {},
        triggered_at=now,
        last_event_at=now,
        resolved_at=now if state == "resolved" else None,
        acknowledged_at=now if state == "acknowledged" else None,
    )
    db.session.add(incident)
    db.session.commit()
    return incident


def titles(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json["items"]]


# --- list: filters and pages -----------------------------------------------------------------


def test_list_filters_as_the_console_does(client, customer, make_user, make_key):
    add_incident(customer, "ApiDown", severity="critical", labels={"service": "api", "instance": "api-1"})
    add_incident(customer, "DiskFull", state="acknowledged", severity="high", labels={"service": "db"})
    add_incident(customer, "Backup failed", state="resolved", severity="medium", source="generic")
    add_incident(customer, "CertExpiry", severity="low", source="pagerduty", labels={"service": "api"})
    headers = make_key(customer=customer)

    assert titles(client.get(URL, headers=headers)) == ["CertExpiry", "Backup failed", "DiskFull", "ApiDown"]
    assert titles(client.get(f"{URL}?state=triggered", headers=headers)) == ["CertExpiry", "ApiDown"]
    assert titles(client.get(f"{URL}?state=open", headers=headers)) == ["CertExpiry", "DiskFull", "ApiDown"]
    assert titles(client.get(f"{URL}?state=resolved", headers=headers)) == ["Backup failed"]
    assert titles(client.get(f"{URL}?severity=critical", headers=headers)) == ["ApiDown"]
    assert titles(client.get(f"{URL}?source=generic", headers=headers)) == ["Backup failed"]
    assert titles(client.get(f"{URL}?label=api", headers=headers)) == ["CertExpiry", "ApiDown"]  # service=api
    assert titles(client.get(f"{URL}?label=api-1", headers=headers)) == ["ApiDown"]  # instance=api-1
    assert titles(client.get(f"{URL}?unacknowledged=true", headers=headers)) == ["CertExpiry", "ApiDown"]
    assert titles(client.get(f"{URL}?unacknowledged=true&severity=low", headers=headers)) == ["CertExpiry"]
    assert titles(client.get(f"{URL}?customer_id={customer.id}&order=severity", headers=headers)) == [
        "ApiDown",
        "DiskFull",
        "Backup failed",
        "CertExpiry",
    ]
    item = client.get(f"{URL}?source=pagerduty", headers=headers).json["items"][0]
    assert item["state"] == "triggered" and item["severity"] == "low" and item["labels"] == {"service": "api"}
    assert item["url"] == f"{URL}/{item['id']}" and item["paged"] == [] and item["customer"] == "Acme Corp"


def test_paged_me_lists_the_incidents_that_paged_the_keys_person(client, customer, make_user, make_key):
    alice = make_user(Role.OPERATOR, name="Alice")
    mine = add_incident(customer, "ApiDown")
    add_incident(customer, "DiskFull")
    event = Event(source="alertmanager", dedup_key="a", status=EventStatus.FIRING, severity=Severity.HIGH)
    event.title, event.customer_id, event.incident_id = "ApiDown", customer.id, mine.id
    db.session.add(event)
    db.session.flush()
    db.session.add(Notification(event_id=event.id, user_id=alice.id, channel="sms", status="sent"))
    db.session.commit()

    answer = client.get(f"{URL}?paged_me=true", headers=make_key(owner=alice))
    assert titles(answer) == ["ApiDown"] and answer.json["items"][0]["paged"] == ["Alice"]
    customer_key = client.get(f"{URL}?paged_me=true", headers=make_key(customer=customer))
    assert customer_key.status_code == 400 and "paged_me" in customer_key.json["error"]["fields"]


@pytest.mark.parametrize("order", ["newest", "severity"])
def test_cursor_pages_walk_every_incident_once_in_order(client, customer, make_key, order):
    severities = ["low", "critical", "high", "critical", "info", "medium", "high"]
    made = [add_incident(customer, f"Alert {n}", severity=s) for n, s in enumerate(severities)]
    headers = make_key(customer=customer)
    seen, cursor, pages = [], None, 0
    while True:
        answer = client.get(f"{URL}?order={order}&limit=3" + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert answer.status_code == 200, answer.text
        seen += [item["id"] for item in answer.json["items"]]
        pages += 1
        cursor = answer.json["next_cursor"]
        if cursor is None:
            break
    rank = {i.id: Severity(i.severity).rank for i in made}
    if order == "newest":
        expected = sorted(rank, reverse=True)
    else:
        expected = sorted(rank, key=lambda i: (rank[i], i), reverse=True)
    assert seen == expected and pages == 3


# --- tenants ---------------------------------------------------------------------------------


def test_a_customer_key_sees_and_acts_on_its_customers_incidents_only(client, customer, other, make_key):
    ours = add_incident(customer, "ApiDown")
    theirs = add_incident(other, "GlobexDown")
    internal = add_incident(None, "Redis down")
    headers = make_key(customer=customer)

    assert titles(client.get(URL, headers=headers)) == ["ApiDown"]
    assert titles(client.get(f"{URL}?customer_id={other.id}", headers=headers)) == []
    assert client.get(f"{URL}/{ours.id}", headers=headers).status_code == 200
    for incident in (theirs, internal):
        assert client.get(f"{URL}/{incident.id}", headers=headers).status_code == 404
        for action in ("ack", "resolve"):
            assert client.post(f"{URL}/{incident.id}/{action}", headers=headers).status_code == 404
    db.session.expire_all()
    assert [db.session.get(Incident, i.id).state for i in (theirs, internal)] == ["triggered", "triggered"]
    admin_view = client.get(URL, headers=make_key())  # an admin key of no customer sees every incident
    assert titles(admin_view) == ["Redis down", "GlobexDown", "ApiDown"]


# --- ack and resolve: the one effect -----------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def paged(app, customer, make_user, drain):
    """A critical alert of the customer that paged Alice and Bob by SMS; its policy escalates after 30 min."""
    db.session.add(
        SlaPolicy(
            customer_id=customer.id,
            priority=Priority.URGENT,
            resolution_minutes=60,
            escalation_minutes=30,
            escalation_interval_minutes=15,
            escalation_limit=2,
        )
    )
    db.session.commit()
    alice = make_user(Role.OPERATOR, name="Alice", phone="+14155550101")
    bob = make_user(Role.OPERATOR, name="Bob", phone="+14155550102")
    item = NormalisedEvent(
        source="alertmanager",
        dedup_key="fp-1@2026-04-01T08:00:00Z",
        incident_key="fp-1",
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="DiskFull on db-1",
        customer_id=customer.id,
        labels={"service": "db", "instance": "db-1"},
    )
    triggered = utcnow()
    incident_id = ingest.ingest([item], now=triggered).events[0].incident_id
    db.session.commit()
    drain()
    return {"alice": alice, "bob": bob, "incident": db.session.get(Incident, incident_id), "at": triggered}


def sms_to(twilio, number: str) -> list[str]:
    return [m["Body"] for m in twilio.received if m["To"] == number]


def escalation_steps() -> list[str]:
    return list(db.session.scalars(db.select(Event.title).where(Event.source == "escalation")))


def test_without_an_ack_the_sweep_escalates(paged):
    """The control for the two tests below: left alone, the incident climbs a level."""
    swept = sla.check_sla(now=paged["at"] + timedelta(minutes=31))
    assert swept.escalated == [f"incident {paged['incident'].id} level 1"]
    db.session.commit()
    assert escalation_steps() == ["Escalation level 1: DiskFull on db-1"]


def test_ack_stops_escalation_and_tells_the_other_paged_user(client, paged, make_key, drain, twilio):
    incident, alice = paged["incident"], paged["alice"]
    assert sms_to(twilio, "+14155550102") and sms_to(twilio, "+14155550101")  # both were paged
    headers = make_key(owner=alice)

    answer = client.post(f"{URL}/{incident.id}/ack", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json
    assert (body["state"], body["acknowledged_by"], body["acknowledged_via"]) == ("acknowledged", "Alice", "api")
    assert body["acknowledged_now"] is True and body["outcome"] == "acknowledged"
    assert [entry["kind"] for entry in body["timeline"]] == ["triggered", "acknowledged"]
    assert body["timeline"][1]["actor"] == "Alice"
    drain()
    told = sms_to(twilio, "+14155550102")[-1]
    assert "Alice acknowledged" in told and "DiskFull on db-1" in told
    assert not any("acknowledged" in text for text in sms_to(twilio, "+14155550101"))  # she knows

    db.session.expire_all()
    assert sla.check_sla(now=paged["at"] + timedelta(hours=2)).escalated == []
    db.session.commit()
    assert escalation_steps() == []

    again = client.post(f"{URL}/{incident.id}/ack", headers=make_key(owner=paged["bob"]))
    assert again.status_code == 200
    assert again.json["acknowledged_now"] is False and again.json["outcome"] == "already"
    assert again.json["message"] == f"#{incident.id} was already acknowledged by Alice."
    assert again.json["acknowledged_by"] == "Alice"


def test_resolve_stops_escalation_and_sends_the_all_clear(client, paged, make_key, drain, twilio):
    incident, bob = paged["incident"], paged["bob"]
    before = len(sms_to(twilio, "+14155550101"))

    answer = client.post(f"{URL}/{incident.id}/resolve", headers=make_key(owner=bob))
    assert answer.status_code == 200, answer.text
    assert (answer.json["state"], answer.json["resolved_by"], answer.json["resolved_now"]) == ("resolved", "Bob", True)
    drain()
    all_clear = sms_to(twilio, "+14155550101")[before:]
    assert len(all_clear) == 1 and "DiskFull on db-1" in all_clear[0] and "ACK" not in all_clear[0]

    db.session.expire_all()
    assert sla.check_sla(now=paged["at"] + timedelta(hours=2)).escalated == []
    db.session.commit()
    assert escalation_steps() == []

    again = client.post(f"{URL}/{incident.id}/resolve", headers=make_key(owner=bob))
    assert again.json["resolved_now"] is False and again.json["outcome"] == "already"
    ack_after = client.post(f"{URL}/{incident.id}/ack", headers=make_key(owner=bob))
    assert ack_after.json["acknowledged_now"] is False and "already resolved" in ack_after.json["message"]


def test_detail_shows_the_timeline_and_the_notifications(client, paged, make_key):
    incident = paged["incident"]
    detail = client.get(f"{URL}/{incident.id}", headers=make_key(owner=paged["alice"]))
    assert detail.status_code == 200
    body = detail.json
    assert body["title"] == "DiskFull on db-1" and body["labels"] == {"service": "db", "instance": "db-1"}
    assert [entry["kind"] for entry in body["timeline"]] == ["triggered"]
    assert sorted(body["paged"]) == ["Alice", "Bob"]
    sms = [n for n in body["notifications"] if n["channel"] == "sms"]
    assert sorted(n["recipient"] for n in sms) == ["…0101", "…0102"]  # masked, never the whole number
    assert {n["status"] for n in sms} == {"sent"}


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=firing", "state"),
        ("severity=urgent", "severity"),
        ("severity=high,critical", "severity"),
        ("source=nagios", "source"),
        ("customer_id=abc", "customer_id"),
        ("label=" + "x" * 201, "label"),
        ("label=a%00b", "label"),
        ("unacknowledged=maybe", "unacknowledged"),
        ("order=oldest", "order"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=0", "cursor"),
        ("cursor=99999999999999999999", "cursor"),
        ("order=severity&cursor=12", "cursor"),  # an id where the ordering's key is (rank, id)
        ("order=severity&cursor=9.12", "cursor"),  # no such rank
    ],
)
def test_bad_filters_are_400_with_the_parameter_named(client, customer, make_key, query, field):
    add_incident(customer, "ApiDown")
    answer = client.get(f"{URL}?{query}", headers=make_key(customer=customer))
    assert answer.status_code == 400, answer.text
    assert field in answer.json["error"]["fields"]


def test_actions_refuse_what_they_cannot_do_and_change_nothing(client, customer, make_user, make_key):
    incident = add_incident(customer, "ApiDown")
    for path in (f"{URL}/999999", f"{URL}/999999/ack", f"{URL}/99999999999/resolve"):
        method = client.get if path.endswith("999999") else client.post
        assert method(path, headers=make_key()).status_code == 404
    userless = client.post(f"{URL}/{incident.id}/ack", headers=make_key(customer=customer, owner=False))
    assert userless.status_code == 422 and "key" in userless.json["error"]["fields"]
    read_only = client.post(f"{URL}/{incident.id}/resolve", headers=make_key(scopes=("read",)))
    assert read_only.status_code == 403
    viewer = make_user(Role.VIEWER, name="Vera")
    assert client.post(f"{URL}/{incident.id}/ack", headers=make_key(owner=viewer)).status_code == 403
    assert client.post(f"{URL}/{incident.id}/ack").status_code == 401
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).state == "triggered"
