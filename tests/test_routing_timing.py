"""When: quiet hours in the user's zone (across midnight, on daylight-saving days), critical breaking through,
the hourly limit and its digest, aggregation of an alert storm, and the periodic release job."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest

from tests.conftest import load_fixture
from tests.routing_helpers import T0, decided, fire, item, prefer, rows
from webapp import jobs, outbox
from webapp.extensions import db
from webapp.models import Incident, IncidentState, Notification, NotificationStatus, Severity
from webapp.services.events import ingest
from webapp.services.routing import digest

PARIS_NIGHT = {"quiet_hours_start": time(22, 0), "quiet_hours_end": time(7, 0), "timezone": "Europe/Paris"}


def sms_user(make_user, customer, **pref):
    user = make_user("operator", phone="+14155550101")
    prefer(user, customer, min_severity_sms=Severity.INFO, **pref)
    return user


def release(now):
    pending = digest.release(now=now)
    db.session.commit()
    outbox.deliver(pending)
    db.session.commit()
    return pending


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # 00:30 in Paris (winter, UTC+1): held until 07:00 Paris = 06:00 UTC the same morning.
        (datetime(2026, 11, 26, 23, 30, tzinfo=UTC), datetime(2026, 11, 27, 6, 0, tzinfo=UTC)),
        # 22:30 in Paris, before midnight: until 07:00 the next morning.
        (datetime(2026, 11, 26, 21, 30, tzinfo=UTC), datetime(2026, 11, 27, 6, 0, tzinfo=UTC)),
        # 23:30 CEST on 24 Oct; clocks go back that night: 07:00 CET is 06:00 UTC, not 05:00.
        (datetime(2026, 10, 24, 21, 30, tzinfo=UTC), datetime(2026, 10, 25, 6, 0, tzinfo=UTC)),
        # 23:30 CET on 28 Mar; clocks go forward that night: 07:00 CEST is 05:00 UTC.
        (datetime(2026, 3, 28, 22, 30, tzinfo=UTC), datetime(2026, 3, 29, 5, 0, tzinfo=UTC)),
    ],
    ids=["after-midnight", "before-midnight", "dst-ends", "dst-starts"],
)
def test_quiet_hours_defer_to_their_end_in_the_users_zone(make_user, customer, now, until):
    user = sms_user(make_user, customer, critical_bypasses_quiet_hours=False, **PARIS_NIGHT)
    event = fire(severity="high", customer=customer, now=now)
    got = rows(event)
    assert got[(user.id, "web")].status == "sent"  # the in-app list is silent: never held
    sms = got[(user.id, "sms")]
    assert (sms.status, sms.hold, sms.deliver_after) == ("deferred", "quiet_hours", until)
    assert sms.reason.startswith("quiet hours 22:00–07:00 (Europe/Paris): held until ")
    assert until.astimezone(sms.deliver_after.tzinfo) == sms.deliver_after


def test_outside_quiet_hours_nothing_is_held(make_user, customer):
    user = sms_user(make_user, customer, **PARIS_NIGHT)
    event = fire(severity="high", customer=customer, now=datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    assert rows(event)[(user.id, "sms")].status == "pending"


def test_deferred_sms_is_released_when_quiet_hours_end_and_sent(make_user, customer, drain, twilio):
    user = sms_user(make_user, customer, critical_bypasses_quiet_hours=False, **PARIS_NIGHT)
    night = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    event = fire(severity="high", customer=customer, now=night)
    assert release(datetime(2026, 11, 27, 5, 59, tzinfo=UTC)) == []  # not yet
    released = release(datetime(2026, 11, 27, 6, 0, tzinfo=UTC))
    assert released == [rows(event)[(user.id, "email")].id, rows(event)[(user.id, "sms")].id]
    drain()
    assert [m["To"] for m in twilio.received] == ["+14155550101"]
    assert rows(event)[(user.id, "sms")].status == NotificationStatus.SENT
    assert release(datetime(2026, 11, 27, 6, 1, tzinfo=UTC)) == []  # released once


def test_critical_breaks_through_quiet_hours_only_if_the_user_lets_it(make_user, customer):
    night = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    lets = sms_user(make_user, customer, critical_bypasses_quiet_hours=True, **PARIS_NIGHT)
    keeps = sms_user(make_user, customer, critical_bypasses_quiet_hours=False, **PARIS_NIGHT)
    critical = rows(fire(severity="critical", customer=customer, now=night))
    high = rows(fire(severity="high", customer=customer, now=night))
    assert critical[(lets.id, "sms")].status == "pending"
    assert critical[(keeps.id, "sms")].status == "deferred"
    assert high[(lets.id, "sms")].status == "deferred"


def test_hourly_limit_holds_the_rest_for_one_digest_when_the_hour_rolls_over(make_user, customer, drain, twilio):
    user = sms_user(make_user, customer, max_notifications_per_hour=3, enabled_channels=["sms"])
    events = [fire(customer=customer, title=f"Alert{i}", now=T0 + timedelta(minutes=i)) for i in range(5)]
    sms = [rows(e)[(user.id, "sms")] for e in events]
    assert [n.status for n in sms] == ["pending"] * 3 + ["deferred"] * 2
    assert sms[3].hold == "hourly_cap" and sms[3].deliver_after == T0 + timedelta(hours=1)
    assert sms[3].reason.startswith("hourly limit of 3 sms messages reached: held for the digest at 2026-11-26 11:00")
    outbox.deliver([n.id for n in sms[:3]])
    db.session.commit()
    drain()

    assert release(T0 + timedelta(minutes=59)) == []
    (digest_id,) = release(T0 + timedelta(hours=1))
    drain()
    bodies = [m["Body"] for m in twilio.received]
    assert len(bodies) == 4 and bodies[-1] == "2 alerts: Alert3, Alert4"
    made = db.session.get(Notification, digest_id)
    assert (made.status, made.hold, made.user_id, made.event_id) == ("sent", "digest", user.id, None)
    assert made.reason == "digest of 2 notifications held by the hourly limit"
    for held in sms[3:]:
        db.session.refresh(held)
        assert (held.status, held.digest_id) == ("suppressed", digest_id)
        assert held.reason == f"delivered in digest #{digest_id} with 1 other notifications (hourly limit)"


def test_a_new_hour_starts_a_new_count(make_user, customer):
    user = sms_user(make_user, customer, max_notifications_per_hour=1)
    first = fire(customer=customer, now=T0)
    second = fire(customer=customer, now=T0 + timedelta(minutes=30))
    third = fire(customer=customer, now=T0 + timedelta(minutes=61))
    assert [rows(e)[(user.id, "sms")].status for e in (first, second, third)] == ["pending", "deferred", "pending"]


def test_alert_storm_of_50_is_one_message_per_user_and_channel(client, make_user, customer, drain, twilio):
    alice = sms_user(make_user, customer, enable_aggregation=True)
    bob = sms_user(make_user, customer, enable_aggregation=True, aggregation_window_seconds=60)
    db.session.get(type(bob), bob.id).phone_numbers[0].number = "+14155550102"
    db.session.commit()
    storm = [
        item(customer=customer, title="DiskFull", labels={"instance": f"db-{i}:9100"}, severity="critical")
        for i in range(50)
    ]
    ingest.ingest(storm, now=T0)
    db.session.commit()
    held = db.session.scalars(db.select(Notification).where(Notification.status == "deferred")).all()
    assert len(held) == 200  # 50 alerts x 2 users x (email, sms)
    assert {(n.user_id, n.deliver_after) for n in held} == {
        (alice.id, T0 + timedelta(seconds=120)),
        (bob.id, T0 + timedelta(seconds=60)),
    }
    # One more alert inside Alice's window joins it rather than opening a new one.
    late = fire(customer=customer, title="ApiDown", now=T0 + timedelta(seconds=90))
    assert rows(late)[(alice.id, "sms")].deliver_after == T0 + timedelta(seconds=120)

    # Bob's window had closed: the late alert opened a new one, alone in it.
    assert rows(late)[(bob.id, "sms")].deliver_after == T0 + timedelta(seconds=150)

    release(T0 + timedelta(seconds=60))  # Bob's window
    release(T0 + timedelta(seconds=120))  # Alice's
    release(T0 + timedelta(seconds=150))  # Bob's second: one alert, sent as itself
    drain()
    sms = sorted((m["To"], m["Body"]) for m in twilio.received)
    assert len(sms) == 3
    assert sms[0][1].startswith("51 alerts: DiskFull on db-0, DiskFull on db-1, DiskFull on db-2")
    assert sms[1][1].startswith("50 alerts: DiskFull on db-0, DiskFull on db-1")
    assert sms[2][1].startswith("\U0001f6a8 CRITICAL ALERT\nApiDown")
    digests = db.session.scalars(db.select(Notification).where(Notification.hold == "digest")).all()
    assert sorted((d.user_id, str(d.channel)) for d in digests) == sorted(
        [(alice.id, "email"), (alice.id, "sms"), (bob.id, "email"), (bob.id, "sms")]
    )
    left = db.session.scalars(db.select(Notification).where(Notification.status == "deferred")).all()
    assert left == []
    carried = db.session.scalars(db.select(Notification).where(Notification.digest_id.is_not(None))).all()
    assert len(carried) == 202 and all(n.status == "suppressed" for n in carried)


def test_release_job_is_a_periodic_job_and_runs_twice_safely(app, make_user, customer):
    assert "release-held-notifications" in {p.name for p in jobs.PERIODIC_JOBS}
    sms_user(make_user, customer, critical_bypasses_quiet_hours=False, enabled_channels=["sms"], **PARIS_NIGHT)
    fire(customer=customer, now=datetime(2026, 11, 1, 23, 30, tzinfo=UTC))
    assert jobs.release_held_notifications() == 1  # the job runs on the real clock: that night is over
    assert jobs.release_held_notifications() == 0


def test_alertmanager_storm_through_the_webhook_is_aggregated(client, make_user, customer, route, drain, twilio):
    admin = make_user("admin", phone="+14155550101")
    prefer(admin, enable_aggregation=True, enabled_channels=["sms"])
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    alert = payload["alerts"][0]
    payload["alerts"] = [
        {**alert, "fingerprint": f"f{i}", "labels": {**alert["labels"], "instance": f"db-{i}:9100"}} for i in range(50)
    ]
    response = client.post(
        "/api/v1/webhooks/alertmanager", json=payload, headers={"Authorization": "Bearer test-alert-token"}
    )
    assert response.json["routing"] == "queued" and route() == 1  # one routing job for the 50 alerts
    assert decided(response.json["event_ids"]) == {"deferred": 50, "suppressed": 100}  # web, email: disabled
    release(datetime.now(UTC) + timedelta(minutes=3))
    drain()
    assert len(twilio.received) == 1
    assert twilio.received[0]["Body"].startswith("50 alerts: DiskFull on db-0")


def test_rows_of_an_event_acknowledged_while_held_are_left_out_of_the_digest(make_user, customer):
    user = sms_user(make_user, customer, enable_aggregation=True, enabled_channels=["sms"])
    events = [fire(customer=customer, title=f"Alert{i}", now=T0, source="generic") for i in range(3)]
    # acknowledged while its row was being released (acks suppress held rows themselves): the digest checks too
    db.session.get(Incident, events[0].incident_id).state = IncidentState.ACKNOWLEDGED
    db.session.commit()
    (digest_id,) = release(T0 + timedelta(minutes=2))
    made = db.session.get(Notification, digest_id)
    assert made.body == "2 alerts: Alert1, Alert2"
    acked = rows(events[0])[(user.id, "sms")]
    reason = "its incident was acknowledged or resolved before it went out"
    assert (acked.status, acked.reason, acked.digest_id) == ("suppressed", reason, None)


def test_the_recovery_sweep_releases_due_rows_through_the_same_digest_rule(make_user, customer, drain, twilio):
    sms_user(make_user, customer, enable_aggregation=True, enabled_channels=["sms"])
    past = datetime.now(UTC) - timedelta(minutes=10)
    for i in range(2):
        fire(customer=customer, title=f"Alert{i}", now=past)
    jobs.recover_notifications()
    drain()
    assert [m["Body"] for m in twilio.received] == ["2 alerts: Alert0, Alert1"]
