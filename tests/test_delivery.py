"""Delivering SMS through the twilio client against the loopback Twilio: success, errors, retries, recovery."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import load_fixture, twilio_settings
from webapp import jobs, outbox
from webapp.channels.base import PermanentError, TransientError
from webapp.extensions import db
from webapp.jobs import claims
from webapp.models import Channel, Notification, NotificationStatus, utcnow
from webapp.services.delivery import attempts

AUTH = {"Authorization": "Bearer test-alert-token"}


def make_notification(user, number: str, body: str = "Disk full on db-1") -> Notification:
    notification = Notification(
        user_id=user.id, channel=Channel.SMS, recipient=number, body=body, status=NotificationStatus.PENDING
    )
    db.session.add(notification)
    db.session.commit()
    return notification


def wait_for_retry(notification: Notification) -> None:
    """Sleep until the RQ scheduler will have the retry job due."""
    due = attempts.retry_job_time(notification.next_attempt_at)
    time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.1)


def deliver_now(notification: Notification) -> None:
    outbox.deliver([notification.id])
    db.session.commit()


def test_sms_is_sent_with_the_twilio_client_and_the_sid_recorded(make_user, drain, twilio):
    user = make_user("admin")
    notification = make_notification(user, "+14155550101", "Hello from OpsRelay")
    deliver_now(notification)
    drain()
    assert twilio.received == [
        {
            "To": "+14155550101",
            "From": "+15005550006",
            "Body": "Hello from OpsRelay",
            "StatusCallback": "http://127.0.0.1:5000/api/v1/webhooks/twilio/status",  # from PUBLIC_BASE_URL
            "sid": notification.provider_id,
        }
    ]
    assert notification.status == NotificationStatus.SENT
    assert notification.provider_id.startswith("SM")
    assert notification.attempts == 1


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [("+15005550001", 21211, "not a valid phone number"), ("+14155550111", 21610, "unsubscribed")],
    ids=["invalid-number", "unsubscribed"],
)
def test_permanent_twilio_errors_fail_at_once_with_twilios_code_and_message(
    make_user, drain, twilio, number, code, message
):
    notification = make_notification(make_user("admin"), number)
    twilio.fail_next(number, code)
    deliver_now(notification)
    drain()
    assert notification.status == NotificationStatus.FAILED
    assert notification.error_code == str(code)
    assert message in notification.error_message
    assert notification.attempts == 1
    assert notification.failed_at is not None
    assert twilio.requests == 1  # no retry


def test_rate_limited_429_waits_for_retry_after_then_sends(make_user, drain, twilio):
    user = make_user("admin")
    notification = make_notification(user, "+14155550101")
    twilio.fail_next("+14155550101", 20429, headers={"Retry-After": "1"})
    started = utcnow()
    deliver_now(notification)
    drain()

    assert notification.status == NotificationStatus.QUEUED
    assert notification.error_code == "20429"
    assert notification.attempts == 1
    assert notification.next_attempt_at >= started + timedelta(seconds=1)
    assert twilio.received == []

    drain()  # too early: the retry is scheduled for later, nothing is sent yet
    assert twilio.requests == 1

    wait_for_retry(notification)
    drain()
    assert notification.status == NotificationStatus.SENT
    assert notification.attempts == 2
    assert [m["To"] for m in twilio.received] == ["+14155550101"]


def test_server_errors_are_retried_then_failed_when_attempts_run_out(app, make_user, drain, twilio):
    user = make_user("admin")
    notification = make_notification(user, "+14155550101")
    twilio.fail_next("+14155550101", 20500, times=10)
    deliver_now(notification)
    for _ in range(app.config["DELIVERY_MAX_ATTEMPTS"]):
        drain()
        if notification.status == NotificationStatus.QUEUED:
            wait_for_retry(notification)
    drain()
    assert notification.status == NotificationStatus.FAILED
    assert notification.attempts == app.config["DELIVERY_MAX_ATTEMPTS"] == twilio.requests
    assert notification.error_message.startswith(f"gave up after {notification.attempts} attempts")


def test_wrong_twilio_credentials_fail_with_twilios_authenticate_error(make_app, twilio):
    wrong = make_app(**twilio_settings(twilio.base_url, auth_token="not-the-token"))
    with pytest.raises(PermanentError) as raised:
        wrong.extensions["opsrelay_sms"].send(to="+14155550101", body="x")
    assert raised.value.code == "20003"
    assert twilio.received == []


def test_unreachable_twilio_is_a_transient_error(make_app):
    offline = make_app(**twilio_settings("http://127.0.0.1:9"))  # discard port: connection refused
    with pytest.raises(TransientError) as raised:
        offline.extensions["opsrelay_sms"].send(to="+14155550101", body="x")
    assert raised.value.code == "network"


def test_console_backend_marks_sms_simulated(make_app, make_user):
    console = make_app()  # no Twilio settings
    notification = make_notification(make_user("admin"), "+14155550101")
    with console.app_context():
        claimed = claims.claim(notification.id)
        attempts.send(claimed)
        db.session.commit()
        assert claimed.status == NotificationStatus.SENT
        assert claimed.simulated is True
        assert claimed.provider_id.startswith("SIM")


def test_a_notification_is_claimed_once(make_user):
    user = make_user("admin")
    notification = make_notification(user, "+14155550101")
    first = claims.claim(notification.id)
    second = claims.claim(notification.id)
    assert first is not None and first.status == NotificationStatus.SENDING
    assert second is None


def test_queue_down_while_an_alert_arrives_then_back_every_sms_sent_once(make_app, make_user, twilio, drain):
    make_user("admin", phone="+14155550101")
    make_user("admin", phone="+14155550102")
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0", **twilio_settings(twilio.base_url))  # nothing listens there
    response = down.test_client().post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers=AUTH,
        content_type="application/json",
    )
    assert response.status_code == 200  # the alert is accepted and kept
    assert db.session.scalars(db.select(Notification)).all() == []  # its routing job never reached the queue

    # The queue is back; the periodic recovery job finds the event nobody routed and hands it to the routing job.
    result = jobs.recover_notifications(now=utcnow() + timedelta(minutes=1))
    assert result["rerouted"] == 1
    drain()
    jobs.recover_notifications(now=utcnow() + timedelta(minutes=5))  # a second sweep finds nothing to redo
    drain()
    assert sorted(m["To"] for m in twilio.received) == ["+14155550101", "+14155550102"]
    assert {n.status for n in db.session.scalars(db.select(Notification))} == {NotificationStatus.SENT}


def test_row_stuck_in_sending_is_recovered_and_marked_possibly_duplicated(make_user, drain, twilio):
    user = make_user("admin")
    notification = make_notification(user, "+14155550101")
    claims.claim(notification.id, now=utcnow() - timedelta(minutes=30))  # a worker that then died
    assert jobs.recover_notifications()["recovered_from_sending"] == 1
    drain()
    assert notification.status == NotificationStatus.SENT
    assert notification.attempts == 2
    assert notification.reason.startswith("possibly duplicated")
    assert len(twilio.received) == 1


def test_retry_jobs_never_run_before_the_rows_retry_time():
    """RQ's scheduler keeps whole seconds; a retry job scheduled early would be refused by the claim."""
    at = datetime(2026, 11, 26, 3, 0, 10, 700_000, tzinfo=UTC)
    assert attempts.retry_job_time(at) == datetime(2026, 11, 26, 3, 0, 11, tzinfo=UTC)
    exact = datetime(2026, 11, 26, 3, 0, 10, tzinfo=UTC)
    assert attempts.retry_job_time(exact) == exact


def test_deferred_rows_are_sent_once_they_are_due(make_user, drain, twilio):
    user = make_user("admin")
    due = make_notification(user, "+14155550101", "quiet hours are over")
    later = make_notification(user, "+14155550102", "still quiet")
    due.status, due.deliver_after = NotificationStatus.DEFERRED, utcnow() - timedelta(seconds=1)
    later.status, later.deliver_after = NotificationStatus.DEFERRED, utcnow() + timedelta(hours=1)
    db.session.commit()
    jobs.recover_notifications()
    drain()
    assert due.status == NotificationStatus.SENT
    assert later.status == NotificationStatus.DEFERRED
    assert [m["To"] for m in twilio.received] == ["+14155550101"]


def test_web_notifications_go_through_the_same_job_and_end_sent(make_user, drain, twilio):
    user = make_user("operator")
    notification = Notification(
        user_id=user.id, channel=Channel.WEB, body="In-app: DiskFull", status=NotificationStatus.PENDING
    )
    db.session.add(notification)
    db.session.commit()
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == NotificationStatus.SENT and notification.sent_at is not None
    assert twilio.requests == 0
