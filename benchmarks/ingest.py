"""Benchmark: the Alertmanager webhook against the least a durable webhook can do.

Under gunicorn on loopback with PostgreSQL and Redis, drive POST /api/v1/webhooks/alertmanager (one
critical firing alert per request, each with its own fingerprint, three admins to page) and, with the
same gunicorn settings and load generator, a baseline endpoint of the same app that inserts one row
and commits. The baseline route exists only in this benchmark's app (bench_app below), never in the
product's URL map. Prints both rates; the last line is `ratio: <webhook rps / baseline rps>`.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/opsrelay_bench REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python benchmarks/ingest.py [--seconds 8] [--concurrency 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/opsrelay_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/2"
TOKEN = "bench-alert-token"  # noqa: S105  (a throwaway token for a loopback server)
BASELINE_TABLE = "bench_baseline"


def bench_app():
    """The product's app plus one route: insert a row, commit, answer. Used by gunicorn only."""
    import sqlalchemy as sa

    from webapp import create_app
    from webapp.extensions import csrf, db

    app = create_app()

    def baseline():
        db.session.execute(sa.text(f"INSERT INTO {BASELINE_TABLE} (note) VALUES (:note)"), {"note": "x"})  # noqa: S608
        db.session.commit()
        return {"status": "accepted"}, 200

    app.add_url_rule("/bench/baseline", "bench_baseline", baseline, methods=["POST"])
    csrf.exempt(baseline)
    return app


def prepare(database_url: str, redis_url: str) -> None:
    """A fresh schema at head, three admins with phones, the baseline table; an empty Redis db."""
    import sqlalchemy as sa
    from flask_migrate import upgrade
    from redis import Redis

    from benchmarks.stack import fresh_database
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import NotificationPreference, PhoneNumber, Role, User

    uri = fresh_database(database_url)
    Redis.from_url(redis_url).flushdb()
    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "REDIS_URL": redis_url, "SECRET_KEY": "bench", "TESTING": True})
    with app.app_context():
        upgrade()
        for n in range(3):
            admin = User(email=f"admin{n}@example.com", name=f"Admin {n}", role=Role.ADMIN)
            admin.set_password("bench-password")
            admin.phone_numbers.append(PhoneNumber(number=f"+1415555010{n}", is_primary=True))
            db.session.add(admin)
            db.session.flush()
            # the engine's cost per alert, every SMS routed to be sent: the storm guard off (issue 19)
            db.session.add(NotificationPreference(user_id=admin.id, enabled_channels=["sms"], storm_guard=False))
        db.session.execute(sa.text(f"CREATE TABLE {BASELINE_TABLE} (id bigserial PRIMARY KEY, note text)"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def cleanup(database_url: str, redis_url: str) -> None:
    import sqlalchemy as sa
    from redis import Redis

    from webapp.config import database_uri

    engine = sa.create_engine(database_uri(database_url, ""))
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    Redis.from_url(redis_url).flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int, env: dict) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "benchmarks.ingest:bench_app()",
        "--pythonpath",
        str(ROOT),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def alert_body() -> bytes:
    fingerprint = uuid.uuid4().hex[:16]
    return json.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "opsrelay",
            "groupLabels": {"alertname": "DiskFull"},
            "externalURL": "http://alertmanager.example.com:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "DiskFull", "severity": "critical", "instance": f"db-{fingerprint}"},
                    "annotations": {"summary": "Disk almost full"},
                    "startsAt": "2026-11-26T03:20:00Z",
                    "fingerprint": fingerprint,
                    "generatorURL": "http://prometheus.example.com:9090/graph",
                }
            ],
        }
    ).encode()


def drive(port: int, path: str, make_body, *, seconds: float, concurrency: int, headers: dict) -> float:
    """Requests per second that `concurrency` keep-alive clients get through in `seconds`."""
    stop = time.monotonic() + seconds
    counts = [0] * concurrency
    errors: list[str] = []

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            connection.request("POST", path, body=make_body(), headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"{path}: {response.status}")
                return
            counts[index] += 1
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"requests failed: {errors[:3]}")
    return sum(counts) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per round and endpoint")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("benchmarks/ingest.py measures PostgreSQL: set DATABASE_URL to a postgresql:// URL")

    prepare(database_url, redis_url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-secret-key",
        "ALERT_WEBHOOK_TOKEN": TOKEN,
        "METRICS_TOKEN": "bench-metrics-token",  # production refuses to start with /metrics open
        "OPSRELAY_ENV": "production",
    }
    server = start_gunicorn(port, args.workers, args.threads, env)
    json_headers = {"Content-Type": "application/json"}
    webhook_headers = {**json_headers, "Authorization": f"Bearer {TOKEN}"}
    try:
        drive(port, "/bench/baseline", lambda: b"{}", seconds=1, concurrency=args.concurrency, headers=json_headers)
        drive(
            port,
            "/api/v1/webhooks/alertmanager",
            alert_body,
            seconds=1,
            concurrency=args.concurrency,
            headers=webhook_headers,
        )
        baseline, webhook = [], []
        for _ in range(args.rounds):  # interleaved, so a noisy neighbour hurts both alike
            baseline.append(
                drive(
                    port,
                    "/bench/baseline",
                    lambda: b"{}",
                    seconds=args.seconds,
                    concurrency=args.concurrency,
                    headers=json_headers,
                )
            )
            webhook.append(
                drive(
                    port,
                    "/api/v1/webhooks/alertmanager",
                    alert_body,
                    seconds=args.seconds,
                    concurrency=args.concurrency,
                    headers=webhook_headers,
                )
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        cleanup(database_url, redis_url)
    base_rps, hook_rps = max(baseline), max(webhook)
    print(f"gunicorn: {args.workers} workers x {args.threads} threads; {args.concurrency} keep-alive clients")
    print(f"baseline (insert one row, commit): {base_rps:8.1f} requests/s  rounds {[round(r) for r in baseline]}")
    print(
        f"alertmanager webhook (1 critical alert, 3 admins paged): {hook_rps:8.1f} requests/s  "
        f"rounds {[round(r) for r in webhook]}"
    )
    print(f"ratio: {hook_rps / base_rps:.2f}")


if __name__ == "__main__":
    main()
