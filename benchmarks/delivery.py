"""Delivery throughput against the queue's own cost.

Queues 2,000 SMS notifications (in one transaction: the outbox hands them in batches) and drains them
with real RQ workers (the app's AppWorker class) through the twilio client to a loopback Twilio-like
server, on PostgreSQL and Redis; right before, drains 2,000 no-op RQ jobs with the same worker class and
number of workers. Three such rounds (--rounds), interleaved so that a noisy neighbour hurts both alike.
Prints the rates and ends with `ratio: <median over rounds of deliveries per second / no-op jobs per
second>`: the cost of a delivery should be the provider call, not our bookkeeping.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/opsrelay_bench REDIS_URL=redis://127.0.0.1:6379/1 \
        .venv/bin/python benchmarks/delivery.py [--count 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from benchmarks.stack import TwilioProcess  # noqa: E402
from tests.conftest import ensure_postgres_database, twilio_settings  # noqa: E402
from webapp import create_app, outbox  # noqa: E402
from webapp.config import database_uri  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import (  # noqa: E402
    Channel,
    Event,
    EventStatus,
    Notification,
    NotificationStatus,
    Role,
    Severity,
    User,
    utcnow,
)
from webapp.queue import DELIVERIES, PAGES, AppWorker, get_queue  # noqa: E402
from webapp.services import bulk  # noqa: E402

NOOP_JOB = "benchmarks.delivery.noop"


def noop() -> None:
    """The baseline job: nothing but RQ's own work."""


def _config(twilio_url: str) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": database_uri(
            os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/opsrelay_bench"), ""
        ),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
        "SECRET_KEY": "benchmark",
        "ALERT_WEBHOOK_TOKEN": "benchmark",
        "EMBEDDED_WORKER": False,
        "PUBLIC_BASE_URL": "https://opsrelay.example.com",
        **twilio_settings(twilio_url),
        # paced (one Redis round trip per SMS, part of the cost measured) at a rate this run never reaches
        "TWILIO_MESSAGES_PER_SECOND": 100_000,
    }


def _worker(go, report, config: dict) -> None:
    """One RQ worker process: build the app, wait for the start signal, work the queue empty."""
    app = create_app(config)
    logging.getLogger().setLevel(logging.WARNING)
    worker = get_queue(app).worker(AppWorker)
    go.wait()
    started = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    report.put((started, time.perf_counter()))


def _provider_alone(go, report, config: dict, count: int) -> None:
    """The reference: one process sending `count` SMS with the same twilio client, no queue, no database."""
    sms = create_app(config).extensions["opsrelay_sms"]
    logging.getLogger().setLevel(logging.WARNING)  # as in the workers
    callback = config["PUBLIC_BASE_URL"] + "/api/v1/webhooks/twilio/status"
    go.wait()
    started = time.perf_counter()
    for i in range(count):
        sms.send(
            to=f"+1415{i:07d}",
            body=f"\U0001f6a8 CRITICAL ALERT\nDiskFull\nInstance: db-{i}:9100",
            status_callback=callback,
        )
    report.put((started, time.perf_counter()))


def _race(target, args: tuple, workers: int) -> float:
    """Start `workers` processes of `target`, release them at once: seconds from first start to last finish."""
    context = multiprocessing.get_context("fork")
    go, report = context.Event(), context.Queue()
    processes = [context.Process(target=target, args=(go, report, *args)) for _ in range(workers)]
    for process in processes:
        process.start()
    time.sleep(2)  # every worker has built its app and is waiting
    go.set()
    results = [report.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(30)
    return max(r[1] for r in results) - min(r[0] for r in results)


def drain(app, config: dict, workers: int) -> tuple[float, int, int]:
    """Run `workers` worker processes over what is queued: (seconds from first start to last finish,
    jobs finished, jobs failed)."""
    queues = [get_queue(app).queues[name] for name in (PAGES, DELIVERIES)]  # critical SMS go on the page lane

    def counts() -> tuple[int, int]:
        return (
            sum(q.finished_job_registry.count for q in queues),
            sum(q.failed_job_registry.count for q in queues),
        )

    finished_before, failed_before = counts()
    elapsed = _race(_worker, (config,), workers)
    finished_after, failed_after = counts()
    return elapsed, finished_after - finished_before, failed_after - failed_before


def finish_retries(app, *, timeout: float = 60.0) -> int:
    """Rows a transient error put back (a loopback connection reset, now and then): run their retries, untimed,
    so that the run can check every row was sent. Returns how many there were."""
    with app.app_context():
        waiting = sa.select(sa.func.count()).where(Notification.status == NotificationStatus.QUEUED)
        retried = db.session.scalar(waiting)
        deadline = time.monotonic() + timeout
        while db.session.scalar(waiting) and time.monotonic() < deadline:
            db.session.remove()
            time.sleep(1)
            get_queue(app).worker(AppWorker).work(burst=True, logging_level="WARNING", with_scheduler=True)
        db.session.remove()
    return retried


def reset(app) -> None:
    """An empty schema at the newest revision and an empty queue (inside an app context)."""
    url = db.engine.url
    if url.get_backend_name() == "postgresql":
        ensure_postgres_database(url.render_as_string(hide_password=False))
        db.engine.dispose()
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade()
    get_queue(app).connection.flushdb()


def prepare(app, count: int) -> list[int]:
    with app.app_context():
        reset(app)
        admin = User(email="bench@example.com", name="Bench", role=Role.ADMIN, password_hash="-")  # noqa: S106 - no login
        db.session.add(admin)
        db.session.flush()
        now = utcnow()
        events = bulk.insert_returning(  # one alert per SMS, as in production: the ACK code names it
            Event,
            [
                {
                    "source": "benchmark",
                    "dedup_key": f"bench-{i}",
                    "status": EventStatus.FIRING,
                    "severity": Severity.CRITICAL,
                    "title": "DiskFull",
                    "created_at": now,
                }
                for i in range(count)
            ],
            Event.id,
        )
        rows = [
            {
                "event_id": event.id,
                "user_id": admin.id,
                "channel": Channel.SMS,
                "recipient": f"+1415{i:07d}",
                "body": f"\U0001f6a8 CRITICAL ALERT\nDiskFull\nService: postgres\nInstance: db-{i}:9100\nDisk 97% full",
                "status": NotificationStatus.PENDING,
                "created_at": now,
                "updated_at": now,
            }
            for i, event in enumerate(events)
        ]
        ids = [row.id for row in bulk.insert_returning(Notification, rows, Notification.id)]
        db.session.commit()
        return ids


def cleanup(app) -> None:
    with app.app_context():
        get_queue(app).connection.flushdb()
        if db.engine.url.get_backend_name() == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="no-op drain, then delivery drain, this many times")
    args = parser.parse_args()

    twilio = TwilioProcess()
    config = _config(twilio.start())
    app = create_app(config)
    logging.getLogger().setLevel(logging.WARNING)
    rounds: list[tuple[float, float]] = []  # (no-op seconds, delivery seconds), side by side in time
    noop_ok = delivered_ok = noop_failed = delivered_failed = 0
    try:
        ids = prepare(app, args.count * args.rounds)
        for r in range(args.rounds):  # interleaved, so a noisy neighbour hurts both alike
            with app.app_context():
                get_queue(app).enqueue_many(NOOP_JOB, [() for _ in range(args.count)])
            noop_seconds, ok, failed = drain(app, config, args.workers)
            noop_ok, noop_failed = noop_ok + ok, noop_failed + failed
            with app.app_context():
                outbox.deliver(ids[r * args.count : (r + 1) * args.count])
                db.session.commit()  # the outbox hands them to the queue at the commit
            delivery_seconds, ok, failed = drain(app, config, args.workers)
            delivered_ok, delivered_failed = delivered_ok + ok, delivered_failed + failed
            rounds.append((noop_seconds, delivery_seconds))
        retried = finish_retries(app)
        provider_seconds = _race(_provider_alone, (config, args.count // args.workers), args.workers)
        with app.app_context():
            statuses = dict(
                db.session.execute(sa.select(Notification.status, sa.func.count()).group_by(Notification.status)).all()
            )
            unsent = db.session.execute(  # why a row did not go (an incomplete run says it)
                sa.select(Notification.status, Notification.error_code, Notification.error_message, Notification.reason)
                .where(Notification.status != NotificationStatus.SENT)
                .limit(5)
            ).all()
    finally:
        cleanup(app)
        sent_to_twilio = len(twilio.stop().received)

    total = args.count * args.rounds
    if noop_ok != total or delivered_failed or statuses != {NotificationStatus.SENT: total}:
        print(
            f"incomplete run: noop ok={noop_ok} failed={noop_failed}; deliveries ok={delivered_ok} "
            f"failed={delivered_failed}; rows {statuses}; unsent {unsent}",
            file=sys.stderr,
        )
        return 1
    provider_count = args.count // args.workers * args.workers
    assert sent_to_twilio == total + provider_count, sent_to_twilio
    noop_rates = [args.count / noop for noop, _ in rounds]
    delivery_rates = [args.count / delivery for _, delivery in rounds]
    ratios = [noop / delivery for noop, delivery in rounds]  # seconds: the rates' ratio, inverted
    noop_rate = statistics.median(noop_rates)
    print(f"worker class: {AppWorker.__module__}.{AppWorker.__name__} (RQ SimpleWorker), workers: {args.workers}")
    print(f"no-op jobs:  {args.count} per round: {' '.join(f'{rate:.0f}/s' for rate in noop_rates)}")
    print(
        f"deliveries:  {args.count} SMS per round: {' '.join(f'{rate:.0f}/s' for rate in delivery_rates)} "
        f"(twilio client -> loopback Twilio in its own process; the outbox hands the rows of one transaction in "
        f"batches of {outbox.BATCH}, each claimed in one statement and sent through the worker's send pool)"
    )
    provider_rate = provider_count / provider_seconds
    print(
        f"reference:   the twilio client alone, {args.workers} processes, no queue or database: {provider_rate:.0f}/s; "
        f"a delivery is a no-op job plus a provider call, so even with no bookkeeping the ratio would be "
        f"{provider_rate / (provider_rate + noop_rate):.3f}"
    )
    if retried:
        print(f"{retried} rows met a transient error and were retried after the timed drains")
    print(f"each round's deliveries / no-op jobs: {' '.join(f'{ratio:.3f}' for ratio in ratios)} (the median below)")
    print(f"ratio: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
