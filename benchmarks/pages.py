"""How the list pages scale: delivery log (first, filtered, deep page) and tickets list at two sizes.

On PostgreSQL (DATABASE_URL, default the local opsrelay_bench10) it migrates an empty schema, fills
1,000 notifications and 1,000 tickets, times each page through the real app (routing, queries,
templates), then fills 1,000,000 notifications and 100,000 tickets and times the same pages again.
Each page's time is the best of 20 requests (the median is printed beside it, to show the noise of a
shared machine); the SQL statements of one request are counted too.
The last line is `ratio: <worst large-size time / its small-size time>`: keyset pages on the
indexes the pages need should stay near 1, whatever the table size.

Run: .venv/bin/python benchmarks/pages.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from tests.conftest import ensure_postgres_database  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import database_uri  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Role, User  # noqa: E402
from webapp.queue import get_queue  # noqa: E402

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/opsrelay_bench10")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/3")
PASSWORD = "bench-password"  # noqa: S105 - a throwaway account in a throwaway schema
CUSTOMERS, USERS, EVENTS_PER_100 = 20, 100, 1
SIZES = ((1_000, 1_000), (1_000_000, 100_000))  # (notifications, tickets)
WARMUP, RUNS = 3, 20


def reset_schema() -> None:
    db.session.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.session.commit()


def fill_people() -> None:
    db.session.execute(
        sa.text(
            "INSERT INTO customer (name, timezone, is_active, created_at) "
            "SELECT 'Customer ' || c, 'UTC', true, now() FROM generate_series(1, :n) c"
        ),
        {"n": CUSTOMERS},
    )
    db.session.execute(
        sa.text(
            'INSERT INTO "user" (email, name, password_hash, role, is_active, timezone, created_at) '
            "SELECT 'user' || u || '@example.com', 'User ' || u, 'x', "
            "CASE WHEN u % 10 = 0 THEN 'viewer' ELSE 'operator' END, true, 'UTC', now() "
            "FROM generate_series(1, :n) u"
        ),
        {"n": USERS},
    )
    db.session.execute(
        sa.text(
            "INSERT INTO user_customer (user_id, customer_id) SELECT u, (u - 1) % :c + 1 FROM generate_series(1, :n) u"
        ),
        {"n": USERS, "c": CUSTOMERS},
    )
    admin = User(email="bench-admin@example.com", name="Bench Admin", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.commit()


def fill(notifications: int, tickets: int) -> None:
    """Set-based fills: one INSERT ... SELECT generate_series per table, spread over the last 30 days."""
    db.session.execute(sa.text("TRUNCATE notification, event, timeline_entry, ticket RESTART IDENTITY CASCADE"))
    events = max(notifications // USERS, 1)
    db.session.execute(
        sa.text(
            "INSERT INTO event (customer_id, source, event_type, dedup_key, status, severity, title, body, labels, "
            "data, created_at) "
            "SELECT (e - 1) % :c + 1, 'alertmanager', CASE WHEN e % 5 = 0 THEN 'job_failed' ELSE 'alert' END, "
            "'fp-' || e, 'firing', (ARRAY['info','low','medium','high','critical'])[e % 5 + 1], "
            "'Alert number ' || e, '', '{}', '{}', now() - make_interval(secs => (:n - e) * 2592000.0 / :n) "
            "FROM generate_series(1, :n) e"
        ),
        {"n": events, "c": CUSTOMERS},
    )
    db.session.execute(
        sa.text(
            "INSERT INTO notification (event_id, user_id, customer_id, channel, recipient, body, status, reason, "
            "simulated, attempts, created_at, updated_at, sent_at) "
            "SELECT (i - 1) / :u + 1, (i - 1) % :u + 1, ((i - 1) / :u) % :c + 1, "
            "(ARRAY['sms','email','web','webhook'])[(i / 7) % 4 + 1], '+1415555' || lpad((i % 10000)::text, 4, '0'), "
            "'Alert body ' || i, "
            "CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 9 = 0 THEN 'suppressed' WHEN i % 3 = 0 THEN 'delivered' "
            "ELSE 'sent' END, "
            "CASE WHEN i % 9 = 0 THEN 'below minimum severity for sms (high)' END, false, 1, "
            "now() - make_interval(secs => (:n - i) * 2592000.0 / :n), now(), now() "
            "FROM generate_series(1, :n) i"
        ),
        {"n": notifications, "u": USERS, "c": CUSTOMERS},
    )
    db.session.execute(
        sa.text(
            "INSERT INTO ticket (customer_id, title, description, priority, status, assignee_id, paused_seconds, "
            "due_at, warn_at, created_at, updated_at) "
            "SELECT (t - 1) % :c + 1, 'Ticket number ' || t, '', (ARRAY['low','normal','high','urgent'])[t % 4 + 1], "
            "(ARRAY['open','pending','resolved','closed'])[t % 4 + 1], "
            "CASE WHEN t % 3 = 0 THEN NULL ELSE t % :u + 1 END, "
            "0, now() + make_interval(hours => t % 48 - 12), now() + make_interval(hours => t % 48 - 13), "
            "now() - make_interval(secs => (:n - t) * 2592000.0 / :n), now() "
            "FROM generate_series(1, :n) t"
        ),
        {"n": tickets, "c": CUSTOMERS, "u": USERS},
    )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))


def pages(notifications: int) -> dict[str, str]:
    deep = max(notifications // 20, 2)  # 95% of the way down the log
    return {
        "delivery log, first page": "/deliveries",
        "delivery log, failed only": "/deliveries?status=failed",
        "delivery log, deep page": f"/deliveries?before={deep}",
        "tickets list": "/tickets",
    }


def measure(client, engine, path: str) -> tuple[float, float, int]:
    """(best, median) seconds of RUNS requests after WARMUP, and the statements of one request.

    Requests run outside any app context, as in the server: each loads its user and data afresh.
    The best time is the page's own cost; the median shows how noisy the (shared) machine was.
    """
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    for _ in range(WARMUP):
        assert client.get(path).status_code == 200, path
    times = []
    for run in range(RUNS):
        if run == 0:
            sa.event.listen(engine, "before_cursor_execute", count)
        start = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - start)
        if run == 0:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 200 and 'href="/' in response.text, path
    return min(times), statistics.median(times), len(statements)


def main() -> None:
    uri = database_uri(DATABASE_URL, "")
    if not uri.startswith("postgresql"):
        sys.exit("benchmarks/pages.py needs PostgreSQL (DATABASE_URL=postgresql://...)")
    ensure_postgres_database(uri)
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": uri,
            "REDIS_URL": REDIS_URL,
            "SECRET_KEY": "bench-secret",
            "WTF_CSRF_ENABLED": False,
            "EMBEDDED_WORKER": False,
            "ALERT_WEBHOOK_TOKEN": "bench-token",
            "LOGIN_RATE_LIMIT": "100 per minute",
        }
    )
    results: dict[str, list[float]] = {}
    with app.app_context():
        reset_schema()
        upgrade()
        fill_people()
        engine = db.engine
    client = app.test_client()
    assert client.post("/login", data={"email": "bench-admin@example.com", "password": PASSWORD}).status_code == 302
    try:
        for notifications, tickets in SIZES:
            started = time.perf_counter()
            with app.app_context():
                fill(notifications, tickets)
            took = time.perf_counter() - started
            print(f"filled {notifications:,} notifications and {tickets:,} tickets in {took:.1f} s")
            for name, path in pages(notifications).items():
                best, median, statements = measure(client, engine, path)
                results.setdefault(name, []).append(best)
                print(
                    f"  {name:28} best {best * 1000:7.2f} ms  median {median * 1000:7.2f} ms  "
                    f"{statements} SQL statements  ({path})"
                )
    finally:
        with app.app_context():
            reset_schema()
            db.session.remove()
            db.engine.dispose()
        get_queue(app).connection.flushdb()
    worst_name, _ = max(results.items(), key=lambda item: item[1][1] / item[1][0])
    for name, (small, large) in results.items():
        print(f"{name:28} small {small * 1000:7.2f} ms  large {large * 1000:7.2f} ms  x{large / small:.2f}")
    small, large = results[worst_name]
    print(f"worst: {worst_name} (best times)")
    print(f"ratio: {large / small:.2f}")


if __name__ == "__main__":
    main()
