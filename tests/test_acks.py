"""acks.acknowledge_event / acknowledge_ticket as the web pages and the API call them."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import AuditLog, Channel, Event, EventStatus, Notification, Severity, WebhookEndpoint
from webapp.models import NotificationStatus as S
from webapp.security import encrypt_secret
from webapp.services.inbound import acks


def event_with_pages(make_user):
    alice = make_user("operator", name="Alice")
    bob = make_user("operator", name="Bob", email="bob@example.com")
    event = Event(source="test", dedup_key="k", status=EventStatus.FIRING, severity=Severity.CRITICAL, title="ApiDown")
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
    return alice, bob, event, rows


def test_acknowledging_an_event_stops_its_pages_and_tells_the_others_on_their_channels(make_user):
    alice, bob, event, rows = event_with_pages(make_user)
    result = acks.acknowledge_event(event, by=alice, via="web")
    db.session.commit()
    assert result.acknowledged and result.suppressed == 1
    assert (event.acknowledged_by_id, rows["bob_sms"].status) == (alice.id, S.SUPPRESSED)
    assert rows["bob_sms"].reason == "acknowledged by Alice"
    assert rows["webhook"].status == S.QUEUED  # integrations still get the event
    [told] = db.session.scalars(db.select(Notification).where(Notification.id.in_(result.informed))).all()
    assert (told.user_id, told.channel, told.recipient, told.status) == (bob.id, Channel.EMAIL, bob.email, S.PENDING)
    assert told.subject == "Acknowledged: ApiDown" and told.body == "ACK: Alice acknowledged ApiDown (web)."
    assert db.session.scalars(db.select(AuditLog.action)).all() == ["event.ack"]

    again = acks.acknowledge_event(event, by=bob, via="web")
    assert again == acks.AckResult(False, 0, [])
    assert event.acknowledged_by_id == alice.id


def test_codes_name_events_and_tickets_without_a_lookup_table():
    assert acks.parse_code("ops-12") == ("ticket", 12)
    assert acks.parse_code("2S") == ("event", 100)
    assert acks.parse_code("no such!") is None
    assert acks.code_for(Event(id=100)) == "2S"
    assert acks.code_for(Event(id=100, ticket_id=12)) == "OPS-12"
