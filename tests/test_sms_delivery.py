"""SMS as billed: encoding and segments recorded, SMS_MAX_SEGMENTS enforced, the ACK code kept."""

from __future__ import annotations

import pytest

from tests.conftest import load_fixture
from webapp import outbox
from webapp.extensions import db
from webapp.models import Channel, Event, EventStatus, Incident, Notification, Severity, open_key
from webapp.models import NotificationStatus as S


def send_sms(user, body: str, drain, *, event: Event | None = None) -> Notification:
    notification = Notification(
        user_id=user.id,
        event_id=event.id if event else None,
        channel=Channel.SMS,
        recipient="+14155550101",
        body=body,
        status=S.PENDING,
    )
    db.session.add(notification)
    db.session.commit()
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == S.SENT
    return notification


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),  # 153 septets per segment once split
        ("€" * 80, "GSM-7", 1),  # € takes two septets: 160
        ("Ж" * 70, "UCS-2", 1),
        ("Ж" * 71, "UCS-2", 2),
        ("\U0001f6a8" + "a" * 68, "UCS-2", 1),  # one emoji: 70 units, and the whole SMS is UCS-2
        ("\U0001f6a8" + "a" * 69, "UCS-2", 2),
    ],
    ids=["gsm-160", "gsm-161", "gsm-extended", "ucs2-70", "ucs2-71", "emoji-70", "emoji-71"],
)
def test_encoding_and_segments_are_recorded(make_user, drain, twilio, body, encoding, segments):
    notification = send_sms(make_user("admin"), body, drain)
    assert (notification.sms_encoding, notification.sms_segments) == (encoding, segments)
    assert twilio.received[0]["Body"] == body


def test_the_system_alert_template_is_ucs2_because_of_its_emoji(client, make_user, drain, twilio):
    make_user("admin", phone="+14155550101")
    client.post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers={"Authorization": "Bearer test-alert-token"},
        content_type="application/json",
    )
    drain()
    notification = db.session.scalars(db.select(Notification)).one()
    body = twilio.received[0]["Body"]
    assert body.startswith("\U0001f6a8 CRITICAL ALERT\nDiskFull")
    # 121 UTF-16 units: 2 UCS-2 segments; the same text without the emoji would fit one GSM-7 segment.
    assert len(body.encode("utf-16-le")) // 2 == 121
    assert (notification.sms_encoding, notification.sms_segments) == ("UCS-2", 2)
    assert notification.body == body  # the log shows the text as sent


def test_long_sms_is_shortened_at_a_word_boundary_keeping_the_ack_code(app, make_user, drain, twilio):
    app.config["SMS_MAX_SEGMENTS"] = 2
    incident = Incident(source="test", key="long", open_key=open_key("test", None, "long"), title="x")
    db.session.add(incident)
    db.session.flush()
    event = Event(
        source="test",
        dedup_key="long",
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="x",
        incident_id=incident.id,
    )
    db.session.add(event)
    db.session.commit()
    words = " ".join(f"word{i}" for i in range(200))
    notification = send_sms(make_user("admin"), words, drain, event=event)
    sent = twilio.received[0]["Body"]
    head, _, code = sent.rpartition("\nReply ACK ")
    assert code == str(incident.id)  # the incident's number
    assert head.endswith("…") and words.startswith(head[:-1])
    assert words[len(head) - 1] == " "  # cut between words
    assert (notification.sms_encoding, notification.sms_segments) == ("UCS-2", 2)  # "…" is not GSM-7


def test_default_cap_is_three_segments(make_user, drain, twilio):
    notification = send_sms(make_user("admin"), "x " * 400, drain)
    assert notification.sms_segments == 3
    assert twilio.received[0]["Body"].endswith("…")
