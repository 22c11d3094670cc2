"""Fault injection: real worker.py processes, their own Redis (stopped and started here), a loopback
Twilio and SMTP, and where PostgreSQL must restart, a throwaway cluster -- never the shared services.

Marked `faults`; they run in CI's PostgreSQL + Redis run (`-m faults` selects them alone). Time-scaled:
the recovery sweep runs every SWEEP seconds and a claim's lease lasts LEASE seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import requests
from flask_migrate import upgrade

from tests.conftest import PASSWORD, _reset, base_config, twilio_settings
from tests.fault_services import ROOT, PostgresCluster, RedisServer, Workers, free_port, wait_for
from tests.smtp_fake import FakeSmtp, make_certificate
from webapp import create_app, outbox
from webapp.config import database_uri
from webapp.extensions import db
from webapp.models import (
    Channel,
    Customer,
    Event,
    Notification,
    NotificationPreference,
    NotificationStatus,
    PhoneNumber,
    Role,
    User,
)
from webapp.queue import get_queue
from webapp.services.delivery import delivery_log

S = NotificationStatus
SWEEP, LEASE = 2, 3
TERMINAL = {S.SENT, S.DELIVERED, S.FAILED, S.SUPPRESSED}
AUTH = {"Authorization": "Bearer test-alert-token"}
PHONES = ("+14155550101", "+14155550102")

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL"), reason="fault injection runs on PostgreSQL + Redis (CI's second run)"
    ),
]


def alert(n: int, tag: str = "Burst") -> dict:
    labels = {"alertname": f"{tag}{n}", "severity": "critical", "service": "faults", "instance": f"host-{n}"}
    return {
        "version": "4",
        "status": "firing",
        "receiver": "opsrelay",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{tag} alert {n}"},
                "startsAt": "2026-12-01T03:00:00Z",
                "fingerprint": f"{tag.lower()}{n:06d}",
            }
        ],
    }


def worker_env(database_url: str, redis_url: str, twilio, **extra) -> dict:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **twilio_settings(twilio.base_url),
        "SECRET_KEY": "secret-for-tests",
        "ALERT_WEBHOOK_TOKEN": "test-alert-token",
        "RECOVERY_SWEEP_SECONDS": str(SWEEP),
        "DELIVERY_LEASE_SECONDS": str(LEASE),
        "DELIVERY_BACKOFF_SECONDS": "0.2",
        "DELIVERY_MAX_ATTEMPTS": "6",
        "LOG_LEVEL": "WARNING",
        "EGRESS_ALLOW": "127.0.0.0/8, ::1, localhost",  # the loopback SMTP server and receivers of these tests
        **{k: str(v) for k, v in extra.items()},
    }


def notifications() -> list[Notification]:
    """The rows of the sends under test: not the web and email channels that add_admins' preference turns off
    (recorded as suppressed, with that reason)."""
    db.session.expire_all()
    turned_off = (Notification.status == S.SUPPRESSED) & Notification.channel.in_([Channel.WEB, Channel.EMAIL])
    return list(db.session.scalars(db.select(Notification).where(~turned_off).order_by(Notification.id)))


def all_settled(expected: int):
    def check() -> bool:
        rows = notifications()
        return len(rows) == expected and all(n.status in TERMINAL for n in rows)

    return check


def duplicates(twilio) -> list:
    return [key for key, count in Counter((m["To"], m["Body"]) for m in twilio.received).items() if count > 1]


def add_admins(count: int = 2) -> list[User]:
    customer = Customer(name="Faults Inc")
    db.session.add(customer)
    admins = []
    for n in range(count):
        user = User(email=f"admin{n}@faults.example", name=f"Admin {n}", role=Role.ADMIN, customers=[customer])
        user.set_password(PASSWORD)
        user.phone_numbers.append(PhoneNumber(number=PHONES[n], is_primary=True))
        db.session.add(user)
        admins.append(user)
    db.session.flush()
    for user in admins:
        # These tests measure the delivery engine under faults: every page of the burst must go out. The storm
        # guard (on by default) would hold all but five per person for a summary; it has its own tests.
        db.session.add(
            NotificationPreference(user_id=user.id, customer_id=None, enabled_channels=["sms"], storm_guard=False)
        )
    db.session.commit()
    return admins


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def fault_app(make_app, database, twilio, redis_server):
    """The web app on the session database and this test's own Redis."""
    app = make_app(REDIS_URL=redis_server.url, **twilio_settings(twilio.base_url))
    with app.app_context():
        _reset(database["seeds"])
        yield app
        db.session.remove()


@pytest.fixture
def workers(database, redis_server, twilio):
    started: list[Workers] = []

    def _start(count: int = 2, **extra) -> Workers:
        group = Workers(worker_env(database["uri"], redis_server.url, twilio, **extra), count).start()
        started.append(group)
        assert group.ready(redis_server.url), group.logs()
        return group

    yield _start
    for group in started:
        group.stop()


def post_alerts(client, numbers, tag: str = "Burst") -> list[int]:
    return [client.post("/api/v1/webhooks/alertmanager", json=alert(n, tag), headers=AUTH).status_code for n in numbers]


@pytest.mark.parametrize("busy", [True, False], ids=["workers-busy", "workers-idle"])
def test_redis_stopped_during_a_burst_everything_is_delivered_once_without_a_human(
    fault_app, workers, redis_server, twilio, busy
):
    add_admins(2)
    client = fault_app.test_client()
    group = workers(2)
    twilio.answer_delay = 0.03 if busy else 0.0
    assert wait_for(lambda: get_queue(fault_app).connection.exists("opsrelay:scheduler:lock"), 30)
    if busy:
        assert set(post_alerts(client, range(40))) == {200}
        assert wait_for(lambda: len(twilio.received) >= 6, 20)  # workers in the middle of the burst
    redis_server.stop()
    assert set(post_alerts(client, range(40, 55))) == {200}  # accepted and kept while the queue is down
    time.sleep(1.5)
    assert len(group.alive()) == 2, group.logs()
    redis_server.start()  # empty: every job it held is gone
    back = time.monotonic()
    expected = (55 if busy else 15) * 2
    assert wait_for(all_settled(expected), 60), Counter(n.status for n in notifications())
    healed = time.monotonic() - back
    assert {n.status for n in notifications()} == {S.SENT}
    assert len(twilio.received) == expected and duplicates(twilio) == []
    assert len(group.alive()) == 2, group.logs()  # both workers outlived the outage
    assert healed < 4 * SWEEP + 10, healed


def test_an_alert_accepted_while_redis_is_down_is_routed_once_it_is_back(fault_app, workers, redis_server, twilio):
    """Issue 19: the webhook commits its event while the queue is down, so its routing job cannot be handed
    over; the event waits unrouted, and when Redis comes back (empty) the recovery sweep hands it to the
    routing job: both admins are paged, once."""
    add_admins(2)
    client = fault_app.test_client()
    group = workers(1)
    assert wait_for(lambda: get_queue(fault_app).connection.exists("opsrelay:scheduler:lock"), 30)
    redis_server.stop()
    assert post_alerts(client, [1], tag="Outage") == [200]
    event = db.session.scalars(db.select(Event)).one()
    assert event.routed_at is None and notifications() == []  # stored; nobody decided yet
    redis_server.start()
    assert wait_for(all_settled(2), 60), (Counter(n.status for n in notifications()), group.logs())
    assert sorted(m["To"] for m in twilio.received) == sorted(PHONES) and duplicates(twilio) == []
    db.session.expire_all()
    assert db.session.get(Event, event.id).routed_at is not None


def test_a_worker_killed_mid_send_is_resent_within_the_lease_marked_with_both_attempts(fault_app, workers, twilio):
    add_admins(1)
    group = workers(2)
    twilio.answer_delay = 3.0  # Twilio has accepted the SMS; the worker waits for the answer
    assert post_alerts(fault_app.test_client(), [1]) == [200]
    assert wait_for(lambda: len(twilio.received) == 1, 20), (
        twilio.requests,
        [(n.status, n.reason, n.attempts, n.claimed_by, n.next_attempt_at) for n in notifications()],
        group.logs(),
    )
    [row] = notifications()
    assert row.status == S.SENDING
    holder = next(p for p in group.processes if row.claimed_by.endswith(f":{p.pid}"))
    holder.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    twilio.answer_delay = 0.0
    assert wait_for(lambda: notifications()[0].status == S.SENT, 30)
    resent_after = time.monotonic() - killed
    [row] = notifications()
    assert len(twilio.received) == 2  # at most one duplicate...
    assert row.reason.startswith("possibly duplicated")  # ...and it is marked
    assert f"worker {row.attempt_log[0]['by']} stopped renewing its claim" in row.reason
    assert [entry["outcome"] for entry in row.attempt_log] == ["lease expired", "sent"]
    assert row.attempt_log[1]["provider_id"] == twilio.received[1]["sid"] == row.provider_id
    assert any("Attempt 1" in line and "lease expired" in line for line in delivery_log.explain(row))
    assert resent_after < LEASE + SWEEP + 6, resent_after


def test_sigterm_mid_job_finishes_the_job_and_leaves_nothing_sending(fault_app, workers, twilio):
    add_admins(1)
    group = workers(1)
    twilio.answer_delay = 2.0
    assert post_alerts(fault_app.test_client(), [1]) == [200]
    assert wait_for(lambda: len(twilio.received) == 1, 20)
    [process] = group.processes
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    [row] = notifications()
    assert row.status == S.SENT and row.provider_id == twilio.received[0]["sid"] and row.attempts == 1
    assert len(twilio.received) == 1


def test_twilio_429_and_500_for_a_while_then_everything_goes_out(fault_app, workers, twilio):
    add_admins(2)
    twilio.fail_next(PHONES[0], 20429, times=2, headers={"Retry-After": "2"})
    twilio.fail_next(PHONES[1], 20500, times=3)
    workers(2)
    started = time.monotonic()
    assert post_alerts(fault_app.test_client(), [1]) == [200]
    assert wait_for(all_settled(2), 40), Counter(n.status for n in notifications())
    rows = {n.recipient: n for n in notifications()}
    assert {n.status for n in rows.values()} == {S.SENT}
    assert rows[PHONES[0]].attempts == 3 and rows[PHONES[1]].attempts == 4
    assert time.monotonic() - started >= 4  # two Retry-After: 2 answers were respected
    outcomes = [entry["outcome"] for entry in rows[PHONES[1]].attempt_log]
    assert outcomes == ["temporary error"] * 3 + ["sent"]
    assert len(twilio.received) == 2


def test_smtp_down_then_up_the_email_goes_out_once(fault_app, workers, tmp_path):
    cert, key = make_certificate(tmp_path)
    server = FakeSmtp(cert, key, security="starttls")  # its port is chosen, not yet open
    group = workers(
        1,
        DELIVERY_MAX_ATTEMPTS=12,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=server.port,
        MAIL_USE_TLS="1",
        MAIL_USERNAME=server.username,
        MAIL_PASSWORD=server.password,
        MAIL_DEFAULT_SENDER="opsrelay@ops.example",
        SMTP_CA_FILE=cert,
    )
    row = Notification(channel=Channel.EMAIL, recipient="ops@faults.example", subject="Disk full", body="Disk full")
    row.status = S.PENDING
    db.session.add(row)
    db.session.flush()
    outbox.deliver([row.id])
    db.session.commit()

    def waiting_to_retry() -> bool:  # refused connection: a temporary error, retried
        row = notifications()[0]
        return row.attempts >= 2 and row.status == S.QUEUED

    assert wait_for(waiting_to_retry, 60), group.logs()
    assert server.messages == []
    server.start()
    try:
        assert wait_for(lambda: notifications()[0].status == S.SENT, 30), group.logs()
        assert len(server.messages) == 1
    finally:
        server.stop()


@pytest.fixture
def cluster():
    if not PostgresCluster.available():
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    own = PostgresCluster().start()
    yield own
    own.close()


def test_postgresql_restarted_under_load_no_500_nothing_stuck(cluster, redis_server, twilio, workers):
    uri = database_uri(cluster.url, "")
    app = create_app({**base_config(uri), "REDIS_URL": redis_server.url, **twilio_settings(twilio.base_url)})
    with app.app_context():
        upgrade()
        add_admins(1)
        db.session.remove()
    workers(2, DATABASE_URL=cluster.url)
    answers: list[tuple[int, int, str | None]] = []

    def send_alerts() -> None:
        client = app.test_client()
        for n in range(80):
            response = client.post("/api/v1/webhooks/alertmanager", json=alert(n, "Restart"), headers=AUTH)
            answers.append((n, response.status_code, response.headers.get("Retry-After")))
            time.sleep(0.02)

    sender = threading.Thread(target=send_alerts)
    sender.start()
    assert wait_for(lambda: len(answers) >= 15, 30)
    cluster.restart(pause=1.0)
    assert wait_for(lambda: len(answers) >= 45, 60)
    cluster.restart(pause=0.2)
    sender.join(300)
    assert not sender.is_alive() and len(answers) == 80
    statuses = Counter(status for _, status, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert all(retry_after for _, status, retry_after in answers if status == 503)
    client = app.test_client()
    for n, status, _ in answers:
        if status == 503:  # the sender retries, as Alertmanager does
            assert wait_for(
                lambda n=n: (
                    client.post("/api/v1/webhooks/alertmanager", json=alert(n, "Restart"), headers=AUTH).status_code
                    == 200
                ),
                20,
                pause=1.0,
            )
    with app.app_context():
        assert wait_for(all_settled(80), 60), Counter(n.status for n in notifications())
        rows = notifications()
        assert {n.status for n in rows} == {S.SENT}
        assert len({n.event_id for n in rows}) == 80  # every alert an event, each with its SMS
        marked = sum(1 for n in rows if (n.reason or "").startswith("possibly duplicated"))
        twice = {body for (_, body) in duplicates(twilio)}
        assert len(twilio.received) - 80 <= marked, [
            (n.id, n.attempts, n.reason, n.attempt_log) for n in rows if n.body in twice
        ]  # every duplicate is marked
        db.session.remove()
        db.engine.dispose()


def test_the_burst_through_gunicorn_and_two_workers(fault_app, workers, database, redis_server, twilio):
    add_admins(2)
    port = free_port()
    env = worker_env(database["uri"], redis_server.url, twilio)
    gunicorn = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "webapp:create_app()", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers(2)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/webhooks/alertmanager"
        assert wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 30)
        alerts = 150
        answers: list[int] = []
        lock = threading.Lock()

        def send(numbers) -> None:
            with requests.Session() as session:
                for n in numbers:
                    status = session.post(url, json=alert(n), headers=AUTH, timeout=30).status_code
                    with lock:
                        answers.append(status)

        senders = [threading.Thread(target=send, args=(range(i, alerts, 6),)) for i in range(6)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(120)
        assert Counter(answers) == {200: alerts}
        assert wait_for(all_settled(alerts * 2), 90), Counter(n.status for n in notifications())
        assert {n.status for n in notifications()} == {S.SENT}
        assert len(twilio.received) == alerts * 2 and duplicates(twilio) == []
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(20)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
