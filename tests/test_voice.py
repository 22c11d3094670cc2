"""Phone calls: placed through the loopback Twilio's Calls API with the app's own twilio client, answered by
pressing a digit (Twilio's signed Gather callback), tracked by the call's status callbacks."""

from __future__ import annotations

import time as time_module
from datetime import UTC, datetime, time, timedelta

import pytest

from tests.conftest import twilio_settings
from tests.routing_helpers import fire, prefer, rows
from webapp import jobs
from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    Incident,
    IncidentEntry,
    IncidentState,
    Notification,
    Severity,
    utcnow,
)
from webapp.models import NotificationStatus as S
from webapp.services.inbound import sms_replies
from webapp.services.routing import decisions

PUBLIC = "https://opsrelay.example.com"  # where Twilio reaches the app; the test client is http://localhost
NUMBER = "+14155550123"
GATHER = "/api/v1/webhooks/twilio/voice/gather"
STATUS = "/api/v1/webhooks/twilio/voice/status"


@pytest.fixture(autouse=True)
def behind_a_proxy(app):
    app.config["PUBLIC_BASE_URL"] = PUBLIC


def alert(customer, **fields) -> Event:
    """A critical Alertmanager alert for Acme Corp, ingested (and routed) now."""
    fields.setdefault("now", utcnow())
    return fire(source="alertmanager", customer=customer, **fields)


def call_me(make_user, **prefs):
    """An admin of Acme Corp who asked for phone calls (voice is off until a person turns it on)."""
    user = make_user("admin", name="Alice", phone=NUMBER)
    prefer(user, enabled_channels=["web", "voice"], **prefs)
    return user


def paged(make_user, drain, customer, *, title="DiskFull on db-1", **prefs):
    """A critical alert opens an incident and Alice's phone rings: (alice, incident, the call's row, the call)."""
    alice = call_me(make_user, **prefs)
    event = alert(customer, title=title, incident_key=f"{title}-key")
    drain()
    notification = rows(event)[(alice.id, "voice")]
    assert notification.status == S.SENT, notification.reason
    incident = db.session.get(Incident, event.incident_id)
    return alice, incident, notification, notification.provider_id


def test_the_call_reads_the_incident_and_asks_for_a_digit(app, make_user, drain, twilio, customer):
    alice, incident, notification, sid = paged(make_user, drain, customer, title="DiskFull on db-1")
    [call] = twilio.calls
    assert sid.startswith("CA") and call["sid"] == sid
    assert (call["To"], call["From"]) == (NUMBER, app.config["TWILIO_PHONE_NUMBER"])
    twiml = call["Twiml"]
    assert "OpsRelay critical alert. DiskFull on db-1. Customer: Acme Corp." in twiml
    gather = f'action="{PUBLIC}{GATHER}/{notification.id}" method="POST" numDigits="1"'
    assert twiml.count(gather) == 2  # asked, then asked once more
    assert twiml.count("Press 1 to acknowledge. Press 2 to escalate.") == 2
    assert twiml.rstrip().endswith("Goodbye.</Say></Response>")
    assert call["StatusCallback"] == PUBLIC + STATUS
    assert call["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert call["MachineDetection"] == "Enable"
    assert twilio.received == []  # a call, not an SMS (SMS is not among Alice's channels)
    assert notification.body.startswith("OpsRelay critical alert. DiskFull on db-1.")


def test_a_voice_call_acknowledged_by_digit_1_through_the_signed_gather_callback(
    app, client, make_user, drain, twilio, customer
):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    incident.next_escalation_at = utcnow() + timedelta(minutes=10)  # the clock that must stop
    db.session.commit()

    answer = twilio.press(sid, "1", client, public_base_url=PUBLIC)

    assert answer.status_code == 200 and answer.mimetype == "application/xml"
    assert "<Say" in answer.text and "Acknowledged. Thank you." in answer.text and "<Gather" not in answer.text
    db.session.expire_all()
    assert incident.state == IncidentState.ACKNOWLEDGED
    assert (incident.acknowledged_by_id, incident.acknowledged_via) == (alice.id, "phone call")
    assert incident.next_escalation_at is None  # escalation stopped
    entries = db.session.scalars(db.select(IncidentEntry).where(IncidentEntry.incident_id == incident.id)).all()
    [ack] = [e for e in entries if e.actor_id == alice.id]
    assert ack.via == "phone call" and "Alice" in ack.body
    assert notification.reason == "pressed 1: acknowledged"

    twilio.report(sid, "completed", client, public_base_url=PUBLIC, AnsweredBy="human", CallDuration="23")
    db.session.expire_all()
    assert notification.status == S.DELIVERED and notification.delivered_at is not None
    assert notification.reason == "pressed 1: acknowledged"  # what the person did stays in the log

    again = twilio.press(sid, "1", client, public_base_url=PUBLIC)  # pressed twice: already done
    assert "already acknowledged" in again.text


@pytest.mark.parametrize("signature", [None, "bm90LXRoZS1zaWduYXR1cmU="], ids=["missing", "bad"])
def test_a_gather_callback_without_a_good_signature_is_refused_and_changes_nothing(
    client, make_user, drain, signature, customer
):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    data = {"CallSid": sid, "Digits": "1", "From": "+15005550006", "To": NUMBER}
    response = client.post(f"{GATHER}/{notification.id}", data=data, headers=headers)
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json["error"]["message"]
    db.session.expire_all()
    assert incident.state == IncidentState.TRIGGERED and notification.reason is None


def test_a_gather_signed_with_another_token_is_refused(client, make_user, drain, twilio, customer):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    response = twilio.press(sid, "1", client, public_base_url=PUBLIC, token="not-our-auth-token")
    assert response.status_code == 403
    db.session.expire_all()
    assert incident.state == IncidentState.TRIGGERED


def test_an_unknown_call_is_a_clear_404(client, make_user, drain, twilio, customer):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    twilio.calls[0]["Twiml"] = twilio.calls[0]["Twiml"].replace(f"{GATHER}/{notification.id}", f"{GATHER}/999999")
    response = twilio.press(sid, "1", client, public_base_url=PUBLIC)
    assert response.status_code == 404
    assert response.json["error"]["message"] == "No phone call #999999 here."
    db.session.expire_all()
    assert incident.state == IncidentState.TRIGGERED


def test_digit_2_escalates_now(client, make_user, drain, twilio, customer):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    incident.next_escalation_at = utcnow() + timedelta(hours=1)
    db.session.commit()

    answer = twilio.press(sid, "2", client, public_base_url=PUBLIC)

    assert answer.status_code == 200 and "Escalated to the next level." in answer.text
    db.session.expire_all()
    assert incident.state == IncidentState.TRIGGERED and incident.escalation_level == 1
    step = db.session.scalars(db.select(Event).where(Event.source == "escalation")).one()
    assert step.incident_id == incident.id and step.title.startswith("Escalation level 1")
    kinds = db.session.scalars(db.select(IncidentEntry.kind).where(IncidentEntry.incident_id == incident.id)).all()
    assert "escalated" in kinds
    drain()
    assert len(twilio.calls) == 2  # level 1 is Acme's admins: Alice's phone rings again, for the step
    assert notification.reason == "pressed 2: escalated"


def test_digit_2_without_a_step_to_come_says_so(client, make_user, drain, twilio, customer):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    assert incident.next_escalation_at is None  # Acme has no escalation policy: no step to take
    answer = twilio.press(sid, "2", client, public_base_url=PUBLIC)
    assert "There is no further escalation step for this alert." in answer.text
    db.session.expire_all()
    assert incident.escalation_level == 0 and len(twilio.calls) == 1


def test_another_digit_asks_again_and_changes_nothing(client, make_user, drain, twilio, customer):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    answer = twilio.press(sid, "7", client, public_base_url=PUBLIC)
    assert answer.status_code == 200
    assert "that key does nothing" in answer.text
    assert f'action="{PUBLIC}{GATHER}/{notification.id}"' in answer.text  # the prompt again
    db.session.expire_all()
    assert incident.state == IncidentState.TRIGGERED and incident.escalation_level == 0


def test_status_callbacks_move_the_call_in_the_delivery_log(client, make_user, drain, twilio, login_as, customer):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    assert twilio.report(sid, "ringing", client, public_base_url=PUBLIC).status_code == 204
    db.session.expire_all()
    assert (notification.status, notification.reason) == (S.SENT, "ringing")
    twilio.report(sid, "no-answer", client, public_base_url=PUBLIC)
    db.session.expire_all()
    assert notification.status == S.FAILED
    assert notification.error_message == "nobody answered: not acknowledged"
    assert incident.state == IncidentState.TRIGGERED  # nobody acknowledged: escalation goes on

    twilio.report(sid, "completed", client, public_base_url=PUBLIC)  # late: a failed call stays failed
    db.session.expire_all()
    assert notification.status == S.FAILED

    login_as("admin")
    page = client.get(f"/deliveries/{notification.id}")
    assert page.status_code == 200
    assert "voice" in page.text and "nobody answered: not acknowledged" in page.text
    assert NUMBER not in page.text and NUMBER[-4:] in page.text  # the number masked, as for SMS


@pytest.mark.parametrize(
    ("reported", "extra", "message"),
    [
        ("busy", {}, "the line was busy: not acknowledged"),
        ("failed", {"ErrorCode": "32009"}, "the call failed (error 32009): not acknowledged"),
        ("completed", {"AnsweredBy": "machine_end_beep"}, "voicemail answered (machine_end_beep): not acknowledged"),
    ],
)
def test_busy_failed_and_voicemail_are_not_acknowledged(
    client, make_user, drain, twilio, reported, extra, message, customer
):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    twilio.report(sid, reported, client, public_base_url=PUBLIC, **extra)
    db.session.expire_all()
    assert (notification.status, notification.error_message) == (S.FAILED, message)
    assert incident.state == IncidentState.TRIGGERED


def test_a_status_callback_without_a_good_signature_changes_nothing(client, make_user, drain, customer):
    alice, incident, notification, sid = paged(make_user, drain, customer)
    response = client.post(STATUS, data={"CallSid": sid, "CallStatus": "completed"})
    assert response.status_code == 403
    db.session.expire_all()
    assert notification.status == S.SENT


def test_twilio_refusing_the_number_fails_the_call_for_good(make_user, drain, twilio, customer):
    alice = call_me(make_user)
    twilio.fail_next(NUMBER, 21211)
    event = alert(customer, incident_key="refused", now=utcnow())
    drain()
    notification = rows(event)[(alice.id, "voice")]
    assert notification.status == S.FAILED and notification.error_code == "21211"
    assert twilio.calls == []


# --- who is called: preferences and routing -----------------------------------------------------------


def test_voice_is_off_by_default_and_role_defaults_never_call(make_user, drain, twilio, customer):
    admin = make_user("admin", phone="+14155550124")  # the role default: critical alerts by SMS
    chose = make_user("admin", phone="+14155550125")
    pref = prefer(chose)  # a preference at its defaults: web, email, SMS
    assert pref.enabled_channels == ["web", "email", "sms"]
    event = alert(customer, incident_key="defaults")
    found = rows(event)
    assert (admin.id, "voice") not in found and found[(admin.id, "sms")].status == S.PENDING
    assert (chose.id, "voice") not in found  # no row for a channel nobody asked for; "why not?" says it
    [why] = [d for d in decisions.plan([event], only_users=[chose.id]) if d.channel == Channel.VOICE]
    assert (why.status, why.record) == (S.SUPPRESSED, False)
    assert why.reason == f"phone call is not turned on in notification preference #{pref.id} (all customers)"
    drain()
    assert twilio.calls == []


@pytest.mark.parametrize(
    ("phone", "opted_out", "severity", "reason"),
    [
        (None, False, "critical", "no phone number: add one on the user's page"),
        ("+14155550126", True, "critical", "opted out of SMS (number"),
        ("+14155550126", False, "high", "below the minimum severity for phone call"),
    ],
    ids=["no-phone", "opted-out", "below-minimum"],
)
def test_who_is_not_called_and_why(make_user, drain, twilio, customer, phone, opted_out, severity, reason):
    user = make_user("admin", phone=phone, opted_out=opted_out)
    prefer(user, enabled_channels=["voice"])
    event = alert(customer, incident_key="why", severity=severity)
    row = rows(event)[(user.id, "voice")]
    assert row.status == S.SUPPRESSED and row.reason.startswith(reason)
    drain()
    assert twilio.calls == []


def test_a_number_that_sent_stop_before_the_call_went_out_is_not_called(make_user, drain, twilio, customer):
    alice = call_me(make_user)
    event = alert(customer, incident_key="stopped")
    assert rows(event)[(alice.id, "voice")].status == S.PENDING
    sms_replies.handle(NUMBER, "STOP")  # between the routing and the send
    db.session.commit()
    drain()
    row = rows(event)[(alice.id, "voice")]
    assert row.status == S.SUPPRESSED and "STOP stops calls too" in row.reason
    assert twilio.calls == []


def test_quiet_hours_mean_no_call_unless_critical_rings_through(make_user, drain, twilio, customer):
    quiet = {"quiet_hours_start": time(9, 0), "quiet_hours_end": time(17, 0), "enabled_channels": ["voice"]}
    at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    held = make_user("admin", phone="+14155550127")
    prefer(held, critical_bypasses_quiet_hours=False, **quiet)
    rings = make_user("admin", phone="+14155550128")
    prefer(rings, **quiet)
    event = alert(customer, incident_key="quiet", now=at)
    found = rows(event)
    assert found[(held.id, "voice")].status == S.SUPPRESSED
    assert found[(held.id, "voice")].reason == "quiet hours 09:00–17:00 (UTC): no phone call"
    assert found[(rings.id, "voice")].status == S.PENDING
    drain()
    assert [c["To"] for c in twilio.calls] == ["+14155550128"]


def test_an_all_clear_is_never_a_call(make_user, drain, twilio, customer):
    alice = call_me(make_user)
    alert(customer, incident_key="over", now=utcnow())
    drain()
    resolved = alert(customer, incident_key="over", status="resolved", now=utcnow())
    row = rows(resolved).get((alice.id, "voice"))
    assert row is not None and row.status == S.SUPPRESSED and "all-clear" in row.reason
    drain()
    assert len(twilio.calls) == 1


def test_the_preference_spec_knows_voice(client, login_as):
    user = login_as("operator", phone=NUMBER)
    token = client.post("/api/v1/auth/token", json={"email": user.email, "password": "pw-for-tests"})
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json['access_token']}"}
    made = client.post(
        "/api/v1/preferences",
        json={"enabled_channels": ["web", "voice"], "min_severity_voice": "high"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert made.json["enabled_channels"] == ["web", "voice"] and made.json["min_severity_voice"] == "high"
    bad = client.post("/api/v1/preferences", json={"min_severity_voice": "loud"}, headers=headers)
    assert bad.status_code in (409, 422)


def test_voice_lane_is_pages():
    from webapp import outbox
    from webapp.queue import PAGES

    assert outbox.lane(Channel.VOICE, Severity.LOW, None) == PAGES
    assert Channel.VOICE.per_person and not Channel.VOICE.on_by_default
    assert Notification.__table__.c.channel.type.enums[-1] == "voice"


def test_a_test_call_from_the_test_sends_page(client, login_as, customer, drain, twilio):
    login_as("operator")
    page = client.post("/test-sends", data={"customer": customer.id, "channel": "voice", "to": "(415) 555-0129"})
    assert page.status_code == 302
    notification = db.session.scalars(db.select(Notification)).one()
    assert (notification.channel, notification.recipient) == (Channel.VOICE, "+14155550129")
    drain()
    [call] = twilio.calls
    assert call["To"] == "+14155550129" and "This is a test call from OpsRelay." in call["Twiml"]
    assert notification.status == S.SENT and notification.provider_id == call["sid"]
    answer = twilio.press(call["sid"], "1", client, public_base_url=PUBLIC)
    assert "nothing to acknowledge" in answer.text  # a test call is about no incident
    refused = client.post("/test-sends", data={"customer": customer.id, "channel": "voice", "to": "12345"})
    assert refused.status_code == 200 and "is not a valid phone number" in refused.text


def test_calls_are_paced_at_the_accounts_calls_per_second(app, make_user, drain, twilio, customer):
    """Twilio starts 2 calls a second for the account (its CPS) and answers 429 beyond: six people called for one
    incident all ring, with no 429, and waiting for a slot is not an attempt."""
    twilio.calls_per_second = 2
    app.extensions["opsrelay_sms"].calls_pacer.per_second = 2
    people = [make_user("admin", name=f"Admin {i}", phone=f"+1415555014{i}") for i in range(6)]
    for person in people:
        prefer(person, enabled_channels=["web", "voice"])
    event = alert(customer, title="DatabaseDown", incident_key="db-down")
    deadline = time_module.monotonic() + 60
    calls = lambda: [rows(event)[(person.id, "voice")] for person in people]  # noqa: E731
    while any(call.status != S.SENT for call in calls()):
        assert time_module.monotonic() < deadline, [(c.status, c.reason) for c in calls()]
        drain()
        db.session.expire_all()
        time_module.sleep(0.2)
    assert twilio.rate_limited == 0
    assert sorted(call["To"] for call in twilio.calls) == sorted(person.phone_numbers[0].number for person in people)
    assert {call.attempts for call in calls()} == {1}


def test_a_messaging_service_alone_cannot_call_and_says_why(make_app, make_user, twilio, customer):
    """SMS through a Messaging Service need no number, but a call needs one as its caller ID: the call fails at
    once, saying what to set, and Twilio is not asked."""
    alice = call_me(make_user)
    event = alert(customer, title="DatabaseDown", incident_key="db-down")
    call_id = rows(event)[(alice.id, "voice")].id
    settings = {**twilio_settings(twilio.base_url), "TWILIO_PHONE_NUMBER": None}
    served = make_app(**settings, TWILIO_MESSAGING_SERVICE_SID="MG" + "0" * 32)
    with served.app_context():
        assert jobs.deliver(call_id) == "failed"
    db.session.expire_all()
    call = db.session.get(Notification, call_id)
    assert call.error_code == "no_caller_id" and "TWILIO_PHONE_NUMBER" in call.error_message
    assert twilio.calls == []
