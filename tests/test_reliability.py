"""The parts that keep delivery going by themselves: one scheduler however many workers, the periodic queue
served first, a recovery sweep when the queue comes back, and claims that are leases with an attempt log.
(The same rules under real faults -- killed processes, stopped Redis, a restarted PostgreSQL -- are in
test_faults.py.)"""

from __future__ import annotations

from datetime import timedelta

from webapp import jobs, outbox
from webapp.extensions import db
from webapp.jobs import claims
from webapp.models import Channel, Notification, NotificationStatus, utcnow
from webapp.queue import DELIVERIES, PAGES, PERIODIC, ROUTING, Scheduler, get_queue
from webapp.services.delivery import delivery_log

S = NotificationStatus


def periodic_jobs(app) -> list:
    return get_queue(app).queues[PERIODIC].get_jobs()


def sms(user, *, status=S.PENDING, created_at=None) -> Notification:
    notification = Notification(
        user_id=user.id, channel=Channel.SMS, recipient="+14155550101", body="Disk full on db-1", status=status
    )
    if created_at is not None:
        notification.created_at = created_at
    db.session.add(notification)
    db.session.commit()
    return notification


def test_workers_serve_the_periodic_queue_before_deliveries(app):
    # periodic first, then the page lane (issue 19), then routing (pages decided go before more are), then bulk
    assert [q.name for q in get_queue(app).worker().queues] == [PERIODIC, PAGES, ROUTING, DELIVERIES]


def test_however_many_workers_run_each_periodic_job_is_enqueued_once(app):
    tasks = get_queue(app)
    schedulers = [Scheduler(tasks) for _ in range(3)]  # three worker processes
    acted = [scheduler.tick() for scheduler in schedulers]
    assert acted == [True, False, False]  # one holds the lock
    names = sorted(job.id for job in periodic_jobs(app))
    assert names == sorted(f"periodic-{p.name}" for p in tasks.periodic)
    for scheduler in schedulers:  # later rounds, an hour on: the copies still wait behind a backlog
        scheduler.tick()
        scheduler.tick(now=utcnow().timestamp() + 3600)
    assert len(periodic_jobs(app)) == len(tasks.periodic)  # no stacked runs


def test_a_dead_schedulers_lock_passes_to_another(app):
    tasks = get_queue(app)
    first, second = Scheduler(tasks), Scheduler(tasks)
    assert first.tick() and not second.tick()
    tasks.connection.delete(Scheduler.LOCK)  # the holder died and its lock expired
    assert second.tick() and not first.tick()


def test_when_the_queue_comes_back_empty_the_recovery_sweep_runs_at_once(app, make_user, drain, twilio):
    tasks = get_queue(app)
    Scheduler(tasks).tick()
    for job in periodic_jobs(app):
        job.delete()
    stranded = sms(make_user("admin"))  # committed while the queue was down: its job never reached it
    tasks.connection.flushdb()  # Redis restarted without its data
    Scheduler(tasks).tick()
    [recovery] = [job for job in periodic_jobs(app) if job.kwargs == {"after_outage": True}]
    assert recovery.func_name == "webapp.jobs.recover_notifications"
    drain()
    assert db.session.get(Notification, stranded.id).status == S.SENT  # no grace, no human step
    assert len(twilio.received) == 1


def test_after_an_outage_the_sweep_skips_the_grace(app, make_user):
    fresh = sms(make_user("admin"))
    assert jobs.attempts.recover().ids == []  # an ordinary sweep leaves a fresh row to its own job
    assert jobs.attempts.recover(after_outage=True).ids == [fresh.id]


def test_a_live_workers_lease_is_renewed_and_not_recovered(app, make_user):
    notification = sms(make_user("admin"))
    claimed = claims.claim(notification.id)
    lease = app.config["DELIVERY_LEASE_SECONDS"]
    assert claimed.claimed_by == claims.worker_name()
    assert claimed.lease_expires_at - claimed.claimed_at == timedelta(seconds=lease)
    keeper = claims.lease_keeper()
    keeper.hold(claimed.id, claimed.claimed_by)
    before = claimed.lease_expires_at
    assert keeper.renew() == 1
    db.session.expire_all()
    renewed = db.session.get(Notification, notification.id)
    assert renewed.lease_expires_at > before
    assert jobs.attempts.recover(now=renewed.lease_expires_at - timedelta(seconds=1)).from_sending == 0
    keeper.drop(claimed.id)


def test_a_lapsed_lease_is_resent_in_seconds_and_keeps_every_attempt(app, make_user, drain, twilio):
    notification = sms(make_user("admin"))
    claims.claim(notification.id)  # a worker claimed it, then vanished without renewing
    lease = app.config["DELIVERY_LEASE_SECONDS"]
    result = jobs.recover_notifications(now=utcnow() + timedelta(seconds=lease + 1))
    assert result["recovered_from_sending"] == 1
    drain()
    row = db.session.get(Notification, notification.id)
    assert row.status == S.SENT and row.attempts == 2
    assert row.reason.startswith("possibly duplicated: attempt 1 by worker ")
    assert "stopped renewing its claim" in row.reason and "a worker stopped" not in row.reason
    assert [entry["outcome"] for entry in row.attempt_log] == ["lease expired", "sent"]
    assert row.attempt_log[1]["provider_id"] == twilio.received[0]["sid"]
    lines = delivery_log.explain(row)
    assert any(line.startswith("Attempt 1 ") and "lease expired" in line for line in lines)
    assert any(line.startswith("Attempt 2 ") and twilio.received[0]["sid"] in line for line in lines)


def test_each_resend_keeps_the_provider_id_of_the_one_before(app, make_user, drain, twilio):
    """Two attempts that both reached Twilio (the outcome of the first was written, then the row re-opened):
    both SIDs stay in the attempt log, the row's provider id is the latest."""
    notification = sms(make_user("admin"))
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    row = db.session.get(Notification, notification.id)
    first_sid = row.provider_id
    row.status = S.QUEUED  # re-opened (as the sweep would after a lapsed lease)
    db.session.commit()
    outbox.deliver([row.id])
    db.session.commit()
    drain()
    row = db.session.get(Notification, notification.id)
    sids = [entry.get("provider_id") for entry in row.attempt_log]
    assert sids == [first_sid, row.provider_id] and first_sid != row.provider_id


def test_a_resent_email_repeats_its_message_id_so_mail_systems_drop_the_copy(app):
    from webapp.channels.email_smtp import Email, SmtpSettings, build_message

    settings = SmtpSettings(
        host="127.0.0.1", port=25, security="none", username=None, password=None, from_email="alerts@acme.example"
    )
    first, second = (
        build_message(
            settings, Email(to="ops@acme.example", subject="x", text="x", idempotency_key="opsrelay-notification-7")
        )
        for _ in range(2)
    )
    assert first.msgId == second.msgId == "<opsrelay-notification-7@acme.example>"
    assert b"Message-ID: <opsrelay-notification-7@acme.example>" in first.as_bytes()  # the header sent
