"""acks.acknowledge / resolve / acknowledge_ticket as the web pages, the API and SMS replies call them."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import (
    AuditLog,
    Channel,
    Event,
    EventStatus,
    Incident,
    IncidentState,
    Notification,
    Severity,
    WebhookEndpoint,
    open_key,
)
from webapp.models import NotificationStatus as S
from webapp.security import encrypt_secret
from webapp.services.inbound import acks


def incident_with_pages(make_user):
    alice = make_user("operator", name="Alice")
    bob = make_user("operator", name="Bob", email="bob@example.com")
    incident = Incident(
        source="test", key="k", open_key=open_key("test", None, "k"), severity=Severity.CRITICAL, title="ApiDown"
    )
    db.session.add(incident)
    db.session.flush()
    event = Event(
        source="test",
        dedup_key="k",
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="ApiDown",
        incident_id=incident.id,
    )
    hook = WebhookEndpoint(name="Status page", url="http://127.0.0.1:9/hook", secret_encrypted=encrypt_secret("s"))
    db.session.add_all([event, hook])
    db.session.flush()
    rows = {
        "bob_email": Notification(
            event_id=event.id, user_id=bob.id, channel=Channel.EMAIL, recipient=bob.email, status=S.SENT
        ),
        "bob_sms": Notification(event_id=event.id, user_id=bob.id, channel=Channel.SMS, status=S.QUEUED),
        "alice_web": Notification(event_id=event.id, user_id=alice.id, channel=Channel.WEB, status=S.DELIVERED),
        "webhook": Notification(
            event_id=event.id, webhook_endpoint_id=hook.id, channel=Channel.WEBHOOK, status=S.QUEUED
        ),
    }
    db.session.add_all(rows.values())
    db.session.commit()
    return alice, bob, incident, rows


def test_acknowledging_an_incident_stops_its_pages_and_tells_the_others_on_their_channels(make_user):
    alice, bob, incident, rows = incident_with_pages(make_user)
    result = acks.acknowledge(incident, by=alice, via="web")
    db.session.commit()
    assert result.acknowledged
    assert (incident.state, incident.acknowledged_by_id, incident.acknowledged_via) == ("acknowledged", alice.id, "web")
    assert (rows["bob_sms"].status, rows["bob_sms"].reason) == (S.SUPPRESSED, "acknowledged by Alice")
    assert rows["webhook"].status == S.QUEUED  # integrations still get the event
    told = db.session.scalars(db.select(Notification).where(Notification.id.in_(result.informed))).all()
    [email] = [n for n in told if n.channel == Channel.EMAIL]
    assert (email.user_id, email.recipient, email.status) == (bob.id, bob.email, S.PENDING)
    assert email.subject == "Acknowledged: ApiDown"
    assert email.body == f"ACK: Alice acknowledged #{incident.id} ApiDown (web)."
    assert {n.user_id for n in told} == {bob.id}  # not Alice, who acted
    assert db.session.scalars(db.select(AuditLog.action)).all() == ["incident.ack"]

    again = acks.acknowledge(incident, by=bob, via="web")
    assert again == acks.AckResult(False, [])
    assert incident.acknowledged_by_id == alice.id


def test_resolving_an_incident_sends_the_all_clear_without_an_ack_code(make_user):
    alice, bob, incident, rows = incident_with_pages(make_user)
    assert acks.resolve(incident, by=alice, via="web")
    db.session.commit()
    assert incident.state == IncidentState.RESOLVED and incident.open_key is None
    assert rows["bob_sms"].status == S.SUPPRESSED  # the page had not gone out: it never will
    clear = db.session.scalars(db.select(Event).where(Event.source == acks.RESOLVE_SOURCE)).one()
    assert clear.status == EventStatus.RESOLVED and clear.incident_id == incident.id
    assert acks.code_for(clear) is None
    told = db.session.scalars(db.select(Notification).where(Notification.event_id == clear.id)).all()
    assert {n.user_id for n in told if n.channel != Channel.WEBHOOK} == {bob.id}  # Alice resolved it herself
    [hook] = [n for n in told if n.channel == Channel.WEBHOOK]
    assert hook.subject == "incident.resolved" and '"resolved_by":"Alice"' in hook.body
    assert not acks.resolve(incident, by=bob, via="web")


def test_codes_name_incidents_and_tickets_without_a_lookup_table():
    assert acks.parse_code("ops-12") == ("ticket", 12)
    assert acks.parse_code("42") == ("incident", 42)
    assert acks.parse_code("#42") == ("incident", 42)
    assert acks.parse_code("no such!") is None
    assert acks.code_for(Event(id=100, incident_id=42, status=EventStatus.FIRING, source="alertmanager")) == "42"
    assert acks.code_for(Event(id=100, ticket_id=12, status=EventStatus.FIRING, source="sla")) == "OPS-12"
    assert acks.code_for(Event(id=100, incident_id=42, status=EventStatus.RESOLVED, source="alertmanager")) is None
