"""How the incidents console scales: its first page, a filtered page, a deep page and one incident, at
1,000 incidents and at 1,000,000 incidents with 10 events each.

On PostgreSQL (DATABASE_URL, default the local opsrelay_bench_incidents, created if missing) it migrates an
empty schema (flask db upgrade), fills the tables with set-based SQL (INSERT … SELECT FROM generate_series:
two customers; severities, states, sources and labels varied; a timeline entry or two per incident;
notifications for every tenth incident), then times each page through the real app (views, queries,
templates or JSON) as an admin: best and median of 20 requests after 3 warm-ups, and the SQL statements of
one request (an engine event listener), which must be the same at both sizes. The large size is filled and
timed first, then the small one (a truncate and a second fill): on a shared machine both sizes are timed
minutes apart, not half an hour. It drops the database at the end.

The console (/incidents, /incidents/<id>) and the JSON API (/api/v1/incidents and its detail) read through
the same services.overview.incident_queries; both are timed (the console where this tree has it).

The last line is `ratio: <worst large-size median / its small-size median>`; keyset pages on the incident
indexes should keep it near 1 (aim: ≤ 1.3).

Run: .venv/bin/python benchmarks/incidents.py
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
from webapp.services.integrations import api_keys  # noqa: E402

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/opsrelay_bench_incidents")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10")
PASSWORD = "bench-password"  # noqa: S105 - a throwaway account in a throwaway database
CUSTOMERS, USERS = 2, 20
SIZES = ((1_000, 1), (1_000_000, 10))  # (incidents, events per incident)
WARMUP, RUNS = 3, 20


def admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def drop_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    engine = admin_engine(url)
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def run(sql: str, **params) -> None:
    db.session.execute(sa.text(sql), params)


def fill_people() -> str:
    """Two customers, their operators, and the admin the pages are read as; returns the admin's API key."""
    run("INSERT INTO customer (name, timezone, is_active, created_at) SELECT 'Customer ' || c, 'UTC', true, now() "
        "FROM generate_series(1, :c) c", c=CUSTOMERS)  # fmt: skip
    run('INSERT INTO "user" (email, name, password_hash, role, is_active, timezone, created_at) '
        "SELECT 'user' || u || '@example.com', 'User ' || u, 'x', 'operator', true, 'UTC', now() "
        "FROM generate_series(1, :n) u", n=USERS)  # fmt: skip
    run("INSERT INTO user_customer (user_id, customer_id) SELECT u, (u - 1) % :c + 1 FROM generate_series(1, :n) u",
        n=USERS, c=CUSTOMERS)  # fmt: skip
    admin = User(email="bench-admin@example.com", name="Bench Admin", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.flush()
    _, key = api_keys.create_key(name="bench", scopes=["admin"], customer=None, expires_days=None, created_by=admin)
    db.session.commit()
    return key


def fill(incidents: int, per_incident: int) -> None:
    """Set-based fills, one INSERT … SELECT generate_series per table, spread over the last 90 days."""
    run("TRUNCATE notification, incident_entry, event, incident RESTART IDENTITY CASCADE")
    run(
        "INSERT INTO incident (customer_id, source, key, open_key, state, severity, severity_rank, event_type, "
        "title, summary, labels, data, resend_count, triggered_at, last_event_at, acknowledged_at, "
        "acknowledged_via, resolved_at, resolved_via, escalation_level, created_at, updated_at) "
        "SELECT s.customer_id, s.source, 'fp-' || i, "
        "CASE WHEN s.state = 'resolved' THEN NULL ELSE s.source || ':' || s.customer_id || ':' || 'fp-' || i END, "
        "s.state, s.severity, array_position(ARRAY['info', 'low', 'medium', 'high', 'critical'], s.severity) - 1, "
        "'alert', 'Alert ' || i || ' on host-' || i % 500, 'summary of ' || i, "
        "json_build_object('alertname', 'Alert' || i % 40, 'service', 'svc-' || i % 50, "
        "'instance', 'host-' || i % 500), '{}', :per - 1, s.at, s.at, "
        "CASE WHEN s.state <> 'triggered' THEN s.at END, CASE WHEN s.state <> 'triggered' THEN 'api' END, "
        "CASE WHEN s.state = 'resolved' THEN s.at END, CASE WHEN s.state = 'resolved' THEN s.source END, "
        "0, s.at, s.at "
        "FROM generate_series(1, :n) i, LATERAL (SELECT (i % :c) + 1 AS customer_id, "
        "(ARRAY['alertmanager', 'alertmanager', 'pagerduty', 'generic'])[i % 4 + 1] AS source, "
        "(ARRAY['resolved', 'resolved', 'resolved', 'acknowledged', 'triggered', 'resolved', 'resolved'])[i % 7 + 1] "
        "AS state, (ARRAY['info', 'low', 'medium', 'high', 'critical', 'critical', 'critical'])[(i / 7) % 7 + 1] "
        "AS severity, now() - make_interval(secs => (:n - i) * 7776000.0 / :n) AS at) s",
        n=incidents,
        c=CUSTOMERS,
        per=per_incident,
    )
    started = time.perf_counter()
    run(
        "INSERT INTO event (customer_id, source, event_type, dedup_key, status, severity, title, body, labels, "
        "data, incident_id, created_at) "
        "SELECT inc.customer_id, inc.source, 'alert', inc.key || '@' || k, "
        "CASE WHEN k = :per AND inc.state = 'resolved' THEN 'resolved' ELSE 'firing' END, "
        "inc.severity, inc.title, '', '{}', '{}', inc.id, inc.triggered_at + make_interval(mins => k) "
        "FROM incident inc, generate_series(1, :per) k",
        per=per_incident,
    )
    events_took = time.perf_counter() - started
    run(
        "INSERT INTO incident_entry (incident_id, kind, body, via, data, created_at) "
        "SELECT id, 'triggered', 'Triggered by ' || source, NULL, '{}', triggered_at FROM incident"
    )
    run(
        "INSERT INTO incident_entry (incident_id, kind, body, via, data, created_at) "
        "SELECT id, state, initcap(state) || ' via api', 'api', '{}', coalesce(resolved_at, acknowledged_at) "
        "FROM incident WHERE state <> 'triggered'"
    )
    run(  # every tenth incident paged one of its customer's people, by SMS and by email
        "INSERT INTO notification (event_id, user_id, customer_id, channel, recipient, body, status, simulated, "
        "attempts, created_at, updated_at, sent_at) "
        "SELECT e.id, (e.incident_id % (:u / :c)) * :c + e.customer_id, e.customer_id, ch.channel, "
        "CASE WHEN ch.channel = 'sms' THEN '+14155550' || lpad((e.incident_id % 1000)::text, 3, '0') "
        "ELSE 'oncall@example.com' END, 'Alert body', 'sent', false, 1, e.created_at, e.created_at, e.created_at "
        "FROM event e, (VALUES ('sms'), ('email')) ch(channel) "
        "WHERE e.incident_id % 10 = 0 AND e.dedup_key = 'fp-' || e.incident_id || '@1'",
        u=USERS,
        c=CUSTOMERS,
    )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    print(f"  ({incidents * per_incident:,} events inserted in {events_took:.1f} s)")


def pages(client, incidents: int, headers: dict) -> dict[str, str]:
    """The pages to time: the HTML console where this tree has it, the JSON API always."""
    deep = incidents // 20  # the page below this id: 95% of the way down (ids grow with time)
    shown = incidents - 7  # an incident with a timeline and notifications (every tenth paged someone)
    shown -= shown % 10
    found = {
        "api list, first page": "/api/v1/incidents",
        "api list, triggered+critical": "/api/v1/incidents?state=triggered&severity=critical",
        "api list, deep page": f"/api/v1/incidents?cursor={deep}",
        "api incident": f"/api/v1/incidents/{shown}",
    }
    if client.get("/incidents").status_code == 200:
        found |= {
            "console, first page": "/incidents",
            "console, triggered+critical": "/incidents?state=triggered&severity=critical",
            "console, deep page": f"/incidents?before={deep}",
            "incident page": f"/incidents/{shown}",
        }
    return found


def measure(client, engine, path: str, headers: dict) -> tuple[float, float, int]:
    """(best, median) seconds of RUNS requests after WARMUP, and the statements of one request."""
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    wants = headers if path.startswith("/api/") else {}
    for _ in range(WARMUP):
        response = client.get(path, headers=wants)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    times = []
    for attempt in range(RUNS):
        if attempt == 0:
            sa.event.listen(engine, "before_cursor_execute", count)
        start = time.perf_counter()
        response = client.get(path, headers=wants)
        times.append(time.perf_counter() - start)
        if attempt == 0:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 200, path
    return min(times), statistics.median(times), len(statements)


def main() -> None:
    uri = database_uri(DATABASE_URL, "")
    if not uri.startswith("postgresql"):
        sys.exit("benchmarks/incidents.py needs PostgreSQL (DATABASE_URL=postgresql://...)")
    drop_database(uri)  # whatever an interrupted run left behind
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
            "API_RATE_LIMIT": "100000 per minute",
        }
    )
    results: dict[str, dict[int, tuple[float, float, int]]] = {}
    try:
        with app.app_context():
            upgrade()
            headers = {"X-API-Key": fill_people()}
            engine = db.engine
        client = app.test_client()
        login = client.post("/login", data={"email": "bench-admin@example.com", "password": PASSWORD})
        assert login.status_code == 302
        for incidents, per_incident in reversed(SIZES):  # large first: both sizes are timed minutes apart
            started = time.perf_counter()
            with app.app_context():
                fill(incidents, per_incident)
            took = time.perf_counter() - started
            print(f"filled {incidents:,} incidents with {per_incident} event(s) each in {took:.1f} s")
            for name, path in pages(client, incidents, headers).items():
                best, median, statements = measure(client, engine, path, headers)
                results.setdefault(name, {})[incidents] = (best, median, statements)
                print(
                    f"  {name:30} best {best * 1000:7.2f} ms  median {median * 1000:7.2f} ms  "
                    f"{statements} SQL statements  ({path})"
                )
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop_database(uri)
    print(f"{'page':30} {'small median':>13} {'large median':>13} {'ratio':>6}  statements (small/large)")
    ratios = {}
    small_size, large_size = SIZES[0][0], SIZES[-1][0]
    for name, runs in results.items():
        if len(runs) < 2:
            continue
        (_, small, small_sql), (_, large, large_sql) = runs[small_size], runs[large_size]
        ratios[name] = large / small
        same = "equal" if small_sql == large_sql else "DIFFER"
        print(
            f"{name:30} {small * 1000:10.2f} ms {large * 1000:10.2f} ms {large / small:6.2f}  "
            f"{small_sql}/{large_sql} {same}"
        )
    worst = max(ratios, key=ratios.get)
    print(f"worst: {worst} (medians)")
    print(f"ratio: {ratios[worst]:.2f}")


if __name__ == "__main__":
    main()
