"""Twilio status callbacks and inbound SMS (STOP/START/HELP, ACK), signed as Twilio signs them."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import TWILIO_TOKEN, load_fixture
from webapp import outbox
from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    EventStatus,
    Incident,
    Notification,
    PhoneNumber,
    Severity,
    Ticket,
    open_key,
    utcnow,
)
from webapp.models import NotificationStatus as S

PUBLIC = "https://opsrelay.example.com"  # what Twilio calls; the test client is http://localhost
STATUS = "/api/v1/webhooks/twilio/status"
INBOUND = "/api/v1/webhooks/twilio/inbound"


@pytest.fixture(autouse=True)
def behind_a_proxy(app):
    app.config["PUBLIC_BASE_URL"] = PUBLIC


def signed(client, path: str, params: dict, *, url: str | None = None, token: str = TWILIO_TOKEN):
    signature = RequestValidator(token).compute_signature(url or PUBLIC + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def sent_sms(make_user, drain, number="+14155550101") -> Notification:
    user = make_user("admin", phone=number)
    notification = Notification(user_id=user.id, channel=Channel.SMS, recipient=number, body="x", status=S.PENDING)
    db.session.add(notification)
    db.session.commit()
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == S.SENT
    return notification


def status(sid: str, value: str, **extra) -> dict:
    return {"MessageSid": sid, "MessageStatus": value, "AccountSid": "AC" + "0" * 31 + "1", **extra}


def test_status_callback_moves_the_sms_to_delivered(client, make_user, drain):
    notification = sent_sms(make_user, drain)
    response = signed(client, STATUS, status(notification.provider_id, "delivered"))
    assert response.status_code == 204
    db.session.expire_all()
    assert notification.status == S.DELIVERED and notification.delivered_at is not None


def test_undelivered_callback_records_twilios_error_code(client, make_user, drain):
    notification = sent_sms(make_user, drain)
    signed(client, STATUS, status(notification.provider_id, "undelivered", ErrorCode="30003"))
    db.session.expire_all()
    assert notification.status == S.FAILED and notification.error_code == "30003"
    assert "undelivered" in notification.error_message


@pytest.mark.parametrize("signature", [None, "bm90LXRoZS1zaWduYXR1cmU="], ids=["missing", "bad"])
def test_status_callback_without_a_good_signature_is_refused_and_changes_nothing(client, make_user, drain, signature):
    notification = sent_sms(make_user, drain)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = client.post(STATUS, data=status(notification.provider_id, "delivered"), headers=headers)
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json["error"]["message"]
    db.session.expire_all()
    assert notification.status == S.SENT


def test_signature_is_checked_against_public_base_url_not_the_url_the_app_sees(client, make_user, drain):
    notification = sent_sms(make_user, drain)
    params = status(notification.provider_id, "delivered")
    assert signed(client, STATUS, params, url="http://localhost" + STATUS).status_code == 403
    assert signed(client, STATUS, params, token="another-token").status_code == 403
    assert signed(client, STATUS, params).status_code == 204


def test_out_of_order_callbacks_never_move_a_message_backwards(client, make_user, drain):
    notification = sent_sms(make_user, drain)
    signed(client, STATUS, status(notification.provider_id, "delivered"))
    signed(client, STATUS, status(notification.provider_id, "sent"))  # late
    signed(client, STATUS, status(notification.provider_id, "queued"))  # later still
    db.session.expire_all()
    assert notification.status == S.DELIVERED


def twiml(response) -> str:
    assert response.status_code == 200 and response.mimetype == "application/xml"
    return response.text


def post_alert(client, fixture="webhooks/alertmanager_firing.json"):
    return client.post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture(fixture),
        headers={"Authorization": "Bearer test-alert-token"},
        content_type="application/json",
    )


def test_stop_then_an_alert_is_suppressed_then_start_receives_again(client, make_user, drain, twilio):
    admin = make_user("admin", phone="+14155550101")
    reply = twiml(signed(client, INBOUND, {"From": "+14155550101", "Body": "  stop "}))
    assert "<Message>You are unsubscribed" in reply
    phone = db.session.scalars(db.select(PhoneNumber)).one()
    assert phone.opted_out and phone.opted_out_via == "SMS STOP" and phone.opted_out_at is not None

    post_alert(client)
    drain()
    [row] = db.session.scalars(db.select(Notification).where(Notification.user_id == admin.id))
    assert row.status == S.SUPPRESSED and "opted out" in row.reason
    assert twilio.received == []

    assert "You will receive OpsRelay SMS again" in twiml(
        signed(client, INBOUND, {"From": "+14155550101", "Body": "START"})
    )
    db.session.expire_all()
    assert not phone.opted_out
    post_alert(client, "webhooks/alertmanager_seed_example.json")
    drain()
    assert [m["To"] for m in twilio.received] == ["+14155550101"]


def test_help_and_unknown_text_get_a_help_reply(client, make_user):
    make_user("admin", phone="+14155550101")
    assert "Reply ACK" in twiml(signed(client, INBOUND, {"From": "+14155550101", "Body": "HELP"}))
    unknown = twiml(signed(client, INBOUND, {"From": "+14155550101", "Body": "hello?"}))
    assert "Unknown command" in unknown and "STOP" in unknown


def test_inbound_needs_a_good_signature(client, make_user):
    make_user("admin", phone="+14155550101")
    response = client.post(INBOUND, data={"From": "+14155550101", "Body": "STOP"})
    assert response.status_code == 403
    assert not db.session.scalars(db.select(PhoneNumber)).one().opted_out


def test_twilio_21610_marks_the_number_opted_out_once_for_every_user_with_it(make_user, drain, twilio):
    first = make_user("admin", phone="+14155550111")
    make_user("operator", phone="+14155550111")  # the same number on another user: one opt-out per number
    notification = Notification(
        user_id=first.id, channel=Channel.SMS, recipient="+14155550111", body="x", status=S.PENDING
    )
    db.session.add(notification)
    db.session.commit()
    twilio.fail_next("+14155550111", 21610)
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == S.FAILED and notification.error_code == "21610"
    phones = db.session.scalars(db.select(PhoneNumber)).all()
    assert [(p.opted_out, p.opted_out_via) for p in phones] == [
        (True, "Twilio error 21610 (recipient unsubscribed)")
    ] * 2


def alert_event(*, incident: bool = True, **fields) -> Event:
    """A firing alert; with `incident`, the open incident it belongs to (whose code its SMS carries)."""
    key = f"ack-{utcnow().timestamp()}"
    if incident:
        row = Incident(source="test", key=key, open_key=open_key("test", None, key), title="DiskFull on db-1")
        db.session.add(row)
        db.session.flush()
        fields["incident_id"] = row.id
    event = Event(
        source="test",
        dedup_key=key,
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="DiskFull on db-1",
        **fields,
    )
    db.session.add(event)
    db.session.flush()
    return event


def sms_row(event, user, status=S.PENDING, **fields) -> Notification:
    row = Notification(
        event_id=event.id,
        user_id=user.id,
        channel=Channel.SMS,
        recipient=user.primary_phone.number,
        body="DiskFull",
        status=status,
        **fields,
    )
    db.session.add(row)
    return row


def code_in(body: str) -> str:
    assert "\nReply ACK " in body
    return body.rsplit("Reply ACK ", 1)[1]


def test_ack_by_sms_stops_further_notifications_and_tells_the_others(client, make_user, drain, twilio):
    alice = make_user("operator", name="Alice", phone="+14155550101")
    bob = make_user("operator", name="Bob", phone="+14155550102")
    carol = make_user("operator", name="Carol", phone="+14155550103")
    make_user("operator", name="Mallory", phone="+14155550109")  # never paged about it
    event = alert_event()
    to_alice, to_bob = sms_row(event, alice), sms_row(event, bob)
    later = sms_row(event, carol, S.DEFERRED, deliver_after=utcnow())  # quiet hours: not yet sent
    db.session.commit()
    outbox.deliver([to_alice.id, to_bob.id])
    db.session.commit()
    drain()
    code = code_in(twilio.received[0]["Body"])

    refused = twiml(signed(client, INBOUND, {"From": "+14155550109", "Body": f"ACK {code}"}))
    assert "that you were paged about" in refused
    assert db.session.get(Incident, event.incident_id).acknowledged_at is None

    reply = twiml(signed(client, INBOUND, {"From": "+14155550101", "Body": f"ack {code.lower()}"}))
    assert f"Acknowledged #{code}: DiskFull on db-1" in reply
    drain()
    db.session.expire_all()
    incident = db.session.get(Incident, event.incident_id)
    assert incident.acknowledged_by_id == alice.id and incident.acknowledged_via == "SMS"
    assert later.status == S.SUPPRESSED and later.reason == "acknowledged by Alice"
    told = [m for m in twilio.received if m["Body"].startswith("ACK:")]
    assert [(m["To"], m["Body"]) for m in told] == [
        ("+14155550102", f"ACK: Alice acknowledged #{code} DiskFull on db-1 (SMS).")
    ]  # Bob was paged and is told; Alice acted; Carol was never reached
    again = twiml(signed(client, INBOUND, {"From": "+14155550102", "Body": f"ACK {code}"}))
    assert "already acknowledged by Alice" in again


def test_ack_of_a_ticket_by_its_key(client, make_user, make_ticket, customer, drain, twilio):
    alice = make_user("operator", name="Alice", phone="+14155550101")
    ticket = make_ticket(customer=customer, title="Disk full on db-1")
    event = alert_event(incident=False, ticket_id=ticket.id, customer_id=customer.id, event_type="sla_warning")
    first = sms_row(event, alice)
    db.session.commit()
    outbox.deliver([first.id])
    db.session.commit()
    drain()
    assert code_in(twilio.received[0]["Body"]) == f"OPS-{ticket.id}"
    second = sms_row(event, make_user("admin", phone="+14155550105"), S.QUEUED)  # a later page
    db.session.commit()

    reply = twiml(signed(client, INBOUND, {"From": "+14155550101", "Body": f"ACK OPS-{ticket.id}"}))
    assert f"Acknowledged OPS-{ticket.id}" in reply
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.acknowledged_by_id == alice.id
    assert ticket.timeline[-1].body == "Acknowledged by Alice (SMS)"
    assert second.status == S.SUPPRESSED and second.reason == f"OPS-{ticket.id} acknowledged by Alice"
