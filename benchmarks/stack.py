"""What the benchmarks share: loopback stand-ins in their own process, a production-shaped stack (its own
Redis and PostgreSQL cluster, gunicorn with 2 workers, worker.py processes) and an Alertmanager burst.

Used by benchmarks/delivery.py, priority.py, faults.py and storm.py.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from tests.conftest import TWILIO_SID, TWILIO_TOKEN  # noqa: E402
from tests.fault_services import PostgresCluster, RedisServer, Workers, free_port, wait_for  # noqa: E402
from tests.twilio_fake import FakeTwilio  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import database_uri  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Customer, NotificationPreference, PhoneNumber, Role, User  # noqa: E402

TOKEN = "bench-alert-token"  # noqa: S105 - the throwaway app's own token


def fresh_database(url: str) -> str:
    """The benchmark's own PostgreSQL database at `url` (created if missing), emptied; its SQLAlchemy URI."""
    from tests.conftest import ensure_postgres_database

    uri = database_uri(url, "")
    ensure_postgres_database(uri)
    empty_database(uri)
    return uri


def empty_database(uri: str) -> None:
    """Drop everything a benchmark made in its database."""
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


class LoopbackProcess:
    """Loopback stand-ins for remote servers in their own process, so their work never competes with the
    benchmark's for one interpreter: they stand in for remote providers, not part of our cost. A subclass's
    `start_servers` (run in that process) returns (what `start` answers, a function that stops them and
    returns what `stop` answers)."""

    def __init__(self):
        context = multiprocessing.get_context("fork")
        self._stop, self._answers = context.Event(), context.Queue()
        self._process = context.Process(target=self._serve, daemon=True)

    def start_servers(self) -> tuple[object, Callable[[], object]]:
        raise NotImplementedError

    def _serve(self) -> None:
        address, stop = self.start_servers()
        self._answers.put(address)
        self._stop.wait()
        self._answers.put(stop())

    def start(self):
        self._process.start()
        return self._answers.get(timeout=30)

    def stop(self):
        self._stop.set()
        received = self._answers.get(timeout=60)
        self._process.join(10)
        return received


@dataclass
class TwilioLog:
    """What the loopback Twilio saw: each accepted message's form fields and time.time(), and its 429s."""

    received: list[dict]
    times: list[float]
    rate_limited: int


class TwilioProcess(LoopbackProcess):
    """The loopback Twilio-like server: `start` gives its base URL, `stop` a TwilioLog. `answer_delay`: seconds
    it takes to answer each message (a real provider's 100-300 ms); `per_sender_per_second`: Twilio's rate
    limit per sender, answered with 429 / 20429 beyond it."""

    def __init__(self, *, answer_delay: float = 0.0, per_sender_per_second: float | None = None):
        super().__init__()
        self.answer_delay = answer_delay
        self.per_sender_per_second = per_sender_per_second

    def start_servers(self) -> tuple[str, Callable[[], TwilioLog]]:
        twilio = FakeTwilio(TWILIO_SID, TWILIO_TOKEN)
        twilio.answer_delay = self.answer_delay
        twilio.per_sender_per_second = self.per_sender_per_second
        twilio.start()

        def stop() -> TwilioLog:
            log = TwilioLog(list(twilio.received), list(twilio.received_times), twilio.rate_limited)
            twilio.stop()
            return log

        return twilio.base_url, stop


def alert(tag: str, n: int) -> dict:
    """One critical Alertmanager alert (a group of one), named `<tag>-<n>`: its SMS body carries the name."""
    labels = {"alertname": f"{tag}-{n}", "severity": "critical", "service": "bench", "instance": f"host-{n}"}
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{tag} alert {n}"},
                "startsAt": "2026-12-01T03:00:00Z",
                "fingerprint": f"{tag}-{n:06d}",
            }
        ],
    }


def send_burst(url: str, tag: str, count: int, seconds: float, answers: list, *, senders: int = 8) -> dict:
    """`count` alerts spread evenly over `seconds`, by `senders` threads; 503s are retried as Alertmanager
    would. Returns {n: (time.time() first sent, time.time() answered 200)}."""
    start = time.monotonic()
    times: dict[int, tuple[float, float]] = {}

    def sender(numbers) -> None:
        with requests.Session() as session:
            for n in numbers:
                delay = start + seconds * n / count - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                first_sent = time.time()
                deadline = time.monotonic() + 120
                while True:
                    try:
                        status = session.post(
                            url, json=alert(tag, n), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
                        ).status_code
                    except requests.RequestException:
                        status = 0
                    answers.append(status)
                    if status == 200:
                        times[n] = (first_sent, time.time())
                        break
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1)

    threads = [threading.Thread(target=sender, args=(range(i, count, senders),)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


class Stack:
    """Its own Redis and PostgreSQL cluster (never the shared ones), the schema, a customer with one admin
    per phone number (storm guard off: every page of a burst must go out, to measure the engine), gunicorn
    with 2 workers and `workers` worker.py processes, all with `env` (the Twilio settings among them)."""

    def __init__(self, env: dict, phones: list[str], *, workers: int = 2):
        self.redis = RedisServer().start()
        self.cluster = PostgresCluster().start()
        self.uri = database_uri(self.cluster.url, "")
        self.env = {
            "DATABASE_URL": self.cluster.url,
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": "bench-secret",
            "ALERT_WEBHOOK_TOKEN": TOKEN,
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "ERROR"),  # INFO: each job's line (name, time)
            **env,
        }
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": self.uri, "REDIS_URL": self.redis.url, "SECRET_KEY": "x"})
        with self.app.app_context():
            upgrade()
            customer = Customer(name="Bench")
            for i, phone in enumerate(phones):
                admin = User(email=f"admin{i}@bench.example", name=f"Admin {i}", role=Role.ADMIN, customers=[customer])
                admin.set_password("bench-password")
                admin.phone_numbers.append(PhoneNumber(number=phone, is_primary=True))
                db.session.add(admin)
                db.session.flush()
                db.session.add(NotificationPreference(user_id=admin.id, enabled_channels=["sms"], storm_guard=False))
            db.session.commit()
        self.port = free_port()
        self.web = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "gunicorn", "webapp:create_app()", "--workers", "2"]
            + ["--bind", f"127.0.0.1:{self.port}", "--log-level", "error"],
            cwd=ROOT,
            env={**os.environ, **self.env},
        )
        self.workers = Workers(self.env, workers).start()
        if not (wait_for(self._web_up, 120) and self.workers.ready(self.redis.url)):
            raise SystemExit("gunicorn or the workers did not start")

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/webhooks/alertmanager"

    def _web_up(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def close(self) -> None:
        self.workers.stop()
        self.web.send_signal(signal.SIGTERM)
        self.web.wait(30)
        self.redis.close()
        self.cluster.close()
