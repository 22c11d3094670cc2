"""A critical page behind bulk work: the page lane against an empty queue.

Two real RQ workers (the app's AppWorker, serving the queues in their order) run on PostgreSQL and Redis.
The baseline: a critical alert is ingested and routed (its SMS goes to a loopback Twilio-like server) while
the queue is empty. Then 5,000 job_failed events are ingested, routed to one email each (a loopback aiosmtpd
server, STARTTLS and AUTH) and one outgoing webhook each (a loopback receiver checking the signature):
10,000 bulk deliveries on the queue; right behind them, the same critical alert again. Each is timed from
just before its ingest commits (accepted) to its SMS's sent_at (Twilio accepted it); the median of a few
trials of each. Prints both and ends with `ratio: <behind the bulk / on an empty queue>` (aim <= 2). The
bulk is then drained to the end (nothing may be lost) and its rate printed: on one queue, the page would
have waited for all of it.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/opsrelay_bench_priority REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python benchmarks/priority.py [--bulk 5000] [--trials 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from benchmarks.delivery import cleanup, reset  # noqa: E402
from benchmarks.stack import LoopbackProcess, TwilioProcess  # noqa: E402
from tests.conftest import LOOPBACK, twilio_settings  # noqa: E402
from tests.routing_helpers import item  # noqa: E402
from tests.smtp_fake import FakeSmtp, make_certificate  # noqa: E402
from tests.webhook_receiver import Receiver  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import database_uri  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import (  # noqa: E402
    Channel,
    Customer,
    Notification,
    NotificationPreference,
    NotificationStatus,
    PhoneNumber,
    Role,
    SmtpConfig,
    User,
    WebhookEndpoint,
)
from webapp.queue import DELIVERIES, PAGES, QUEUE_NAMES, AppWorker, get_queue  # noqa: E402
from webapp.security import encrypt_secret  # noqa: E402
from webapp.services.events import ingest  # noqa: E402

SECRET = "benchmark-webhook-secret"  # noqa: S105 - the loopback receiver's signing secret
SMTP_USER, SMTP_PASSWORD = "mailer", "bench-pw"  # noqa: S105
DONE = (NotificationStatus.SENT, NotificationStatus.FAILED)  # (the admin's email rows are suppressed: SMS only)


class MailAndHooks(LoopbackProcess):
    """The loopback SMTP server and webhook receiver: `start` gives (SMTP port, receiver URL), `stop` (emails
    received, webhooks accepted)."""

    def __init__(self, certificate: tuple[Path, Path]):
        super().__init__()
        self.certificate = certificate

    def start_servers(self) -> tuple[tuple[int, str], Callable[[], tuple[int, int]]]:
        smtp = FakeSmtp(*self.certificate, username=SMTP_USER, password=SMTP_PASSWORD).start()
        receiver = Receiver(SECRET)

        def stop() -> tuple[int, int]:
            received = (len(smtp.messages), len(receiver.accepted))
            smtp.stop()
            receiver.stop()
            return received

        return (smtp.port, receiver.url), stop


def _config(twilio_url: str, ca_file: Path) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": database_uri(
            os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/opsrelay_bench_priority"), ""
        ),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"),
        "SECRET_KEY": "benchmark",
        "ALERT_WEBHOOK_TOKEN": "benchmark",
        "EMBEDDED_WORKER": False,
        "EMAIL_BACKEND": "smtp",
        "SMTP_CA_FILE": str(ca_file),
        "EGRESS_ALLOW": LOOPBACK,
        "PUBLIC_BASE_URL": "https://opsrelay.example.com",
        **twilio_settings(twilio_url),
    }


def _worker(config: dict) -> None:
    """One RQ worker process serving every queue in order until it is told to stop (SIGTERM: warm shutdown), with
    the scheduler thread of worker.py: a retry (a loopback connection refused now and then) comes back when due."""
    app = create_app(config)
    logging.getLogger().setLevel(logging.WARNING)
    queue = get_queue(app)
    threading.Thread(target=queue.scheduler().run, args=(threading.Event(),), daemon=True).start()
    queue.worker(AppWorker).work(logging_level="WARNING", with_scheduler=False)


def prepare(app, smtp_port: int, receiver_url: str) -> int:
    """Schema, a customer with its SMTP server and one webhook endpoint, an on-call admin with a phone and an
    operator who gets job failures by email (storm guard off for both: this measures the engine)."""
    with app.app_context():
        reset(app)
        customer = Customer(name="Bench Corp")
        admin = User(email="oncall@bench.example", name="On call", role=Role.ADMIN, password_hash="-")  # noqa: S106
        operator = User(email="ops@bench.example", name="Ops", role=Role.OPERATOR, password_hash="-")  # noqa: S106
        operator.customers.append(customer)
        db.session.add_all([customer, admin, operator])
        db.session.flush()
        db.session.add_all(
            [
                PhoneNumber(user_id=admin.id, number="+14155550101", label="mobile", is_primary=True),
                NotificationPreference(user_id=admin.id, enabled_channels=["sms"], storm_guard=False),
                NotificationPreference(user_id=operator.id, enabled_channels=["email"], storm_guard=False),
                SmtpConfig(
                    customer_id=customer.id,
                    host="127.0.0.1",
                    port=smtp_port,
                    security="starttls",
                    username=SMTP_USER,
                    password_encrypted=encrypt_secret(SMTP_PASSWORD),
                    from_email="alerts@bench.example",
                    timeout_seconds=10,
                ),
                WebhookEndpoint(
                    customer_id=customer.id,
                    name="Ticket feed",
                    url=receiver_url,
                    secret_encrypted=encrypt_secret(SECRET),
                    event_types=[],  # every event: job failures and alerts alike
                ),
            ]
        )
        db.session.commit()
        return customer.id


def page(app, customer_id: int, n: int) -> tuple[float, int]:
    """Ingest one critical alert (routed: an SMS to the on-call admin); (accepted at, the SMS's id)."""
    with app.app_context():
        customer = db.session.get(Customer, customer_id)
        accepted = time.time()
        result = ingest.ingest([item(customer=customer, title=f"DatabaseDown {n}", key=f"page-{n}")])
        db.session.commit()  # the outbox hands its jobs to the queue here
        sms = db.session.scalar(
            sa.select(Notification.id).where(
                Notification.event_id == result.events[0].id,
                Notification.channel == Channel.SMS,
                Notification.status != NotificationStatus.SUPPRESSED,  # the operator's: SMS off
            )
        )
        return accepted, sms


def provider_time(app, accepted: float, sms_id: int, *, timeout: float = 120) -> float:
    """Seconds from accepted to the SMS's sent_at (polled)."""
    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            sent_at = db.session.scalar(sa.select(Notification.sent_at).where(Notification.id == sms_id))
            db.session.rollback()
            if sent_at is not None:
                return sent_at.timestamp() - accepted
            time.sleep(0.005)
    raise TimeoutError(f"the page (notification {sms_id}) was not sent within {timeout:.0f} s")


def queue_bulk(app, customer_id: int, count: int) -> None:
    """`count` job failures: one email and one outgoing webhook each, all on the bulk lane."""
    with app.app_context():
        customer = db.session.get(Customer, customer_id)
        items = [
            item(customer=customer, event_type="job_failed", severity="high", title=f"Backup {i} failed", key=f"b{i}")
            for i in range(count)
        ]
        ingest.ingest(items)
        db.session.commit()


def wait_for_bulk(app, total: int, *, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            statuses = dict(
                db.session.execute(
                    sa.select(Notification.status, sa.func.count())
                    .where(Notification.channel.in_([Channel.EMAIL, Channel.WEBHOOK]))
                    .group_by(Notification.status)
                ).all()
            )
            db.session.rollback()
            if sum(statuses.get(s, 0) for s in DONE) >= total:
                return statuses
            time.sleep(0.5)
    raise TimeoutError(f"the bulk did not drain within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulk", type=int, default=5000, help="job failures: one email and one webhook each")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    certificate = make_certificate(Path(tempfile.mkdtemp(prefix="opsrelay-bench-")))
    twilio, mail = TwilioProcess(), MailAndHooks(certificate)
    config = _config(twilio.start(), certificate[0])
    smtp_port, receiver_url = mail.start()
    app = create_app(config)
    logging.getLogger().setLevel(logging.WARNING)
    context = multiprocessing.get_context("fork")
    workers = []
    try:
        customer_id = prepare(app, smtp_port, receiver_url)
        workers = [context.Process(target=_worker, args=(config,), daemon=True) for _ in range(args.workers)]
        for worker in workers:
            worker.start()
        time.sleep(2)  # every worker has built its app and waits on the queues

        provider_time(app, *page(app, customer_id, -1))  # warm-up: first connections, caches; not counted
        empty = []
        for n in range(args.trials):
            empty.append(provider_time(app, *page(app, customer_id, n)))
        queue_bulk(app, customer_id, args.bulk)
        bulk_started = time.monotonic()
        with app.app_context():
            queued = {name: get_queue(app).queues[name].count for name in (PAGES, DELIVERIES)}
        behind = []
        for n in range(args.trials):
            behind.append(provider_time(app, *page(app, customer_id, args.trials + n)))
        with app.app_context():
            still_queued = get_queue(app).queues[DELIVERIES].count
        statuses = wait_for_bulk(app, 2 * args.bulk + 4 * args.trials + 2)  # each page: an email and a webhook too
        bulk_seconds = time.monotonic() - bulk_started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(30)
        cleanup(app)
        sent_to_twilio = len(twilio.stop().received)
        emails, hooks = mail.stop()

    if emails < args.bulk or hooks < args.bulk or sent_to_twilio != 2 * args.trials + 1:
        print(f"incomplete run: emails {emails}, webhooks {hooks}, SMS {sent_to_twilio}", file=sys.stderr)
        return 1
    base, loaded = statistics.median(empty), statistics.median(behind)
    print(f"workers: {args.workers} ({AppWorker.__module__}.{AppWorker.__name__}), serving {', '.join(QUEUE_NAMES)}")
    print(
        f"empty queue:  accepted -> Twilio accepted, median of {args.trials}: {base * 1000:.1f} ms "
        f"({', '.join(f'{t * 1000:.0f}' for t in empty)})"
    )
    print(
        f"behind bulk:  {queued[DELIVERIES]} bulk jobs queued ({args.bulk} emails to loopback SMTP, {args.bulk} "
        f"outgoing webhooks), {still_queued} still waiting after the pages went: median {loaded * 1000:.1f} ms "
        f"({', '.join(f'{t * 1000:.0f}' for t in behind)})"
    )
    print(
        f"bulk drained in {bulk_seconds:.1f} s ({2 * args.bulk / bulk_seconds:.0f}/s): on one queue a page would "
        f"have waited about that long; rows {dict((str(k), v) for k, v in statuses.items())}"
    )
    print(f"ratio: {loaded / base:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
