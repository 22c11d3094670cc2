"""Concurrent sends: the worker's send pool, batches of claims and outcomes, pacing per sender, the Messaging
Service SID. Against the loopback Twilio (the real twilio client), with real RQ workers."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tests.conftest import base_config, twilio_settings
from tests.routing_helpers import fire, rows
from webapp import create_app, jobs, outbox
from webapp.channels import pacing
from webapp.extensions import db
from webapp.jobs import claims, sendpool
from webapp.models import Channel, Incident, Notification, PhoneNumber, User, utcnow
from webapp.models import NotificationStatus as S
from webapp.queue import DELIVER_JOB, DELIVERIES, PAGES, AppWorker, get_queue
from webapp.services.inbound import acks


def add_sms(user, count: int, *, prefix: str = "+1415555", status: S = S.PENDING) -> list[Notification]:
    rows = [
        Notification(
            user_id=user.id, channel=Channel.SMS, recipient=f"{prefix}{i:04d}", body=f"page {i}", status=status
        )
        for i in range(count)
    ]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def drain_until(drain, done, *, timeout: float) -> None:
    """Run the queue (a real RQ worker, its send pool) until `done()`; paced rows come back later."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        drain()
        time.sleep(0.2)


def statuses() -> Counter:
    db.session.expire_all()
    return Counter(db.session.scalars(db.select(Notification.status)))


def test_a_worker_sends_many_at_once_within_its_pool(app, make_user, drain, twilio):
    app.config["DELIVERY_CONCURRENCY"] = 4
    twilio.answer_delay = 0.3  # a real provider's answer time
    rows = add_sms(make_user("admin"), 12)
    outbox.deliver([row.id for row in rows])
    db.session.commit()
    drain()
    assert statuses() == {S.SENT: 12}
    assert sorted(m["To"] for m in twilio.received) == sorted(row.recipient for row in rows)
    assert 1 < twilio.max_in_flight <= 4  # concurrent, and never more than DELIVERY_CONCURRENCY


def test_a_batch_records_each_outcome(app, make_user, twilio):
    user = make_user("admin")
    ok, invalid, limited, opted_out = add_sms(user, 4)
    db.session.add(PhoneNumber(user_id=user.id, number=opted_out.recipient, opted_out=True, opted_out_via="SMS STOP"))
    db.session.commit()
    twilio.fail_next(invalid.recipient, 21211)
    twilio.fail_next(limited.recipient, 20429, headers={"Retry-After": "30"})
    before = utcnow()

    answer = jobs.deliver_batch([ok.id, invalid.id, limited.id, opted_out.id, 999_999])

    db.session.expire_all()
    assert ok.status == S.SENT and ok.provider_id == twilio.received[0]["sid"]
    assert invalid.status == S.FAILED and invalid.error_code == "21211"
    assert limited.status == S.QUEUED and limited.error_code == "20429"
    assert limited.next_attempt_at >= before + timedelta(seconds=30)  # never sooner than Retry-After
    assert opted_out.status == S.SUPPRESSED and "opted out" in opted_out.reason
    assert [m["To"] for m in twilio.received] == [ok.recipient]
    assert {row.attempts for row in (ok, invalid, limited)} == {1}
    assert "1 skipped" in answer  # the id that is no row: nothing claimed, nothing sent
    scheduled = get_queue(app).queues["deliveries"].scheduled_job_registry.get_job_ids()
    assert len(scheduled) == 1  # the retry of the rate-limited one


def test_the_messaging_service_sends_instead_of_the_number(make_app, make_user, twilio):
    row_id = add_sms(make_user("admin"), 1)[0].id
    served = make_app(**twilio_settings(twilio.base_url), TWILIO_MESSAGING_SERVICE_SID="MG" + "0" * 32)
    with served.app_context():
        assert jobs.deliver(row_id) == "sent"
    (message,) = twilio.received
    assert message["MessagingServiceSid"] == "MG" + "0" * 32
    assert "From" not in message


def test_pacing_keeps_under_twilios_rate_per_sender(app, make_user, drain, twilio):
    """Twilio takes 10 messages a second from this sender: 500 SMS go out with no 429, none dropped."""
    twilio.per_sender_per_second = 10
    app.config["TWILIO_MESSAGES_PER_SECOND"] = 10
    app.extensions["opsrelay_sms"].pacer.per_second = 10
    rows = add_sms(make_user("admin"), 500)
    outbox.deliver([row.id for row in rows])
    db.session.commit()
    drain_until(drain, lambda: statuses() == {S.SENT: 500}, timeout=150)
    assert twilio.rate_limited == 0
    assert Counter(m["To"] for m in twilio.received) == {row.recipient: 1 for row in rows}
    db.session.expire_all()
    assert {row.attempts for row in rows} == {1}  # waiting for a slot is not an attempt


def test_a_paused_process_does_not_send_its_stale_slots_at_once(app, monkeypatch):
    """Ten send threads reserved the next second of a 10/s sender, then the process was paused for 1.2 s (a GC
    pause, CPU steal, a stopped container). Woken together past their slots, they take fresh ones instead of
    all sending at once: the provider sees its rate kept, not a burst it answers with 429s."""
    pacer = pacing.Pacer(get_queue(app).connection, 10)
    sender = f"+1555{uuid.uuid4().int % 10**7:07d}"
    pause_ends = time.monotonic() + 1.2

    def sleep_through_the_pause(seconds: float) -> None:
        time.sleep(max(seconds, pause_ends - time.monotonic()))

    monkeypatch.setattr(pacing, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep_through_the_pause))
    sent_at: list[float] = []

    def send() -> None:
        pacer.wait_for_slot(sender)
        sent_at.append(time.monotonic())

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(sent_at) == 10
    sent_at.sort()
    # Each send goes within max_late (0.25 s) of a slot 0.1 s from the others: at most 6 in any 0.3 s.
    assert max(sum(at <= t < at + 0.3 for t in sent_at) for at in sent_at) <= 6, sent_at


def _work(config: dict) -> None:
    """One worker process: its own app, engine, connections and send pool; works the queue empty."""
    app = create_app(config)
    get_queue(app).worker(AppWorker).work(burst=True, logging_level="WARNING", with_scheduler=False)


@contextmanager
def statements_on_send_threads():
    """The first word of each statement the send pool's threads run inside the block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if threading.current_thread().name.startswith("opsrelay-send"):
            seen.append(statement.split()[0])

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def test_each_send_of_a_batch_writes_its_outcome_in_one_statement(app, make_user, twilio):
    """On a send-pool thread, a row whose send touched nothing else has its outcome written as one autocommit
    UPDATE (no transaction, no flush of the ORM): the claim read its event and opt-out already. On SQLite the
    claim reads nothing along, so a row's thread also reads them (and commits as a transaction)."""
    rows = add_sms(make_user("admin"), 3)
    with statements_on_send_threads() as on_send_threads:
        assert jobs.deliver_batch([row.id for row in rows]) == "3 sent; 0 skipped"
    assert statuses() == {S.SENT: 3}
    if db.engine.dialect.name == "postgresql":
        assert on_send_threads == ["UPDATE"] * 3
    else:
        assert sorted(on_send_threads) == ["SELECT"] * 3 + ["UPDATE"] * 3


def test_a_page_of_an_open_incident_reads_its_state_once_and_writes_its_outcome_in_one_statement(
    app, make_user, customer, twilio
):
    """The claim reads each page's event and incident along. On its send thread a page looks once more at the
    incident's state (it may have been acknowledged since the claim) on a connection of its own, and its outcome
    is still one UPDATE: no transaction, no flush. (SQLite: the claim reads nothing along; the thread's one read
    is of the event with its incident, and the outcome commits as a transaction.)"""
    users = [make_user("admin", phone=f"+1415555020{i}", customers=[]) for i in range(3)]
    event = fire(customer=customer, title="DatabaseDown", source="alertmanager", incident_key="db-1", now=utcnow())
    assert event.incident_id is not None
    ids = [rows(event)[(user.id, "sms")].id for user in users]
    with statements_on_send_threads() as seen:
        assert jobs.deliver_batch(ids) == "3 sent; 0 skipped"
    assert sorted(m["To"] for m in twilio.received) == sorted(user.phone_numbers[0].number for user in users)
    assert sorted(seen) == ["SELECT"] * 3 + ["UPDATE"] * 3


def test_an_ack_while_claimed_pages_wait_for_a_send_thread_stops_them(app, make_user, customer, twilio):
    """Alice acknowledges after the worker claimed the pages but before a send thread took them: they are
    suppressed, saying who acknowledged, and nothing reaches Twilio."""
    alice = make_user("admin", name="Alice", phone="+14155550211", customers=[])
    bob = make_user("admin", name="Bob", phone="+14155550212", customers=[])
    event = fire(customer=customer, title="DatabaseDown", source="alertmanager", incident_key="db-1", now=utcnow())
    ids = [rows(event)[(user.id, "sms")].id for user in (alice, bob)]
    claimed = claims.claim_many(ids)
    assert len(claimed) == 2
    with app.app_context():  # another session: the web request of Alice's ack
        acks.acknowledge(db.session.get(Incident, event.incident_id), by=db.session.get(User, alice.id), via="web")
        db.session.commit()

    assert sendpool.get().send(claimed) == ["suppressed", "suppressed"]
    db.session.expire_all()
    pages = db.session.scalars(db.select(Notification).where(Notification.id.in_(ids))).all()
    assert {(page.status, page.reason) for page in pages} == {(S.SUPPRESSED, "acknowledged by Alice")}
    assert twilio.received == []


def test_two_worker_processes_never_send_one_notification_twice(app, database, make_user, twilio):
    if db.engine.dialect.name != "postgresql" or get_queue(app).embedded:
        pytest.skip("two worker processes share PostgreSQL and Redis (run with DATABASE_URL and REDIS_URL)")
    twilio.answer_delay = 0.02
    rows = add_sms(make_user("admin"), 1000, prefix="+141555")
    ids = [row.id for row in rows]
    for _ in range(2):  # every row has two jobs (as after a Redis outage): the two workers race for each
        outbox.deliver(ids)
        db.session.commit()
    config = {**base_config(database["uri"]), **twilio_settings(twilio.base_url)}
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_work, args=(config,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    assert [worker.exitcode for worker in workers] == [0, 0]
    received = Counter(m["Body"] for m in twilio.received)
    assert received == {row.body: 1 for row in rows}  # each notification once
    assert statuses() == {S.SENT: 1000}
    claimed_by = Counter(db.session.scalars(db.select(Notification.claimed_by)))
    assert len(claimed_by) == 2  # both workers sent some


def test_a_page_queued_while_the_pool_is_full_of_bulk_overtakes_the_bulk(app, make_user, customer, drain, twilio):
    """The worker's main thread is never held by bulk work while a page waits: a bulk job waiting for room in
    the pool gives way, and inside the pool the page starts on the next free thread, before bulk rows that were
    waiting there first (issue 19's benchmarks/priority.py measures the time; this, the order)."""
    app.config["DELIVERY_CONCURRENCY"] = 4  # 2 threads for bulk
    twilio.answer_delay = 0.2
    user = make_user("admin", phone="+14155550101", customers=[])
    page = rows(fire(customer=customer, title="DatabaseDown"))[(user.id, "sms")]
    get_queue(app).queues[PAGES].empty()  # the page is enqueued again below, while the bulk is being sent
    bulk = add_sms(user, 48)  # SMS of no critical event: the DELIVERIES lane, three jobs of 16
    outbox.deliver([row.id for row in bulk])
    db.session.commit()
    assert len(get_queue(app).queues[DELIVERIES]) == 3
    page_id, page_number = page.id, page.recipient
    seen_before_page: list[int] = []

    def page_arrives() -> None:
        seen_before_page.append(len(twilio.received))
        get_queue(app).enqueue_many(DELIVER_JOB, [(page_id,)], queue=PAGES)

    timer = threading.Timer(0.5, page_arrives)
    timer.start()
    drain()
    timer.join()

    assert statuses() == {S.SENT: 49}
    order = [message["To"] for message in twilio.received]
    assert len(order) == 49 and seen_before_page[0] < 16  # the page came while the first batch was being sent
    # At most the bulk rows in flight when it came and two more rounds of the two bulk threads (its claim takes a
    # moment on a loaded machine) start before it: the 40-odd bulk rows waiting in the pool and on the queue go
    # after it.
    assert order.index(page_number) <= seen_before_page[0] + 3 * 2
