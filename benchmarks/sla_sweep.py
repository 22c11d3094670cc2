"""Benchmark: the SLA sweep's cost follows the due tickets, not the size of the ticket table.

On PostgreSQL it fills 10,000 tickets and then 1,000,000 (set-based, generate_series), with the same
1,000 due in both (500 past their warning time, 500 past their deadline); at each size it runs the
sweep (sla.check_sla: mark, timeline, events, escalation) RUNS times, each inside a transaction that
is rolled back so every run sees the same due tickets, and takes the median. It prints the plan of the
sweep's selecting queries at 1,000,000 (they must use the partial indexes, not scan the table) and
ends with `ratio: <median at 1,000,000 / median at 10,000>`.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/opsrelay_bench9 REDIS_URL=redis://127.0.0.1:6379/4 \\
        .venv/bin/python benchmarks/sla_sweep.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.config import database_uri  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.services.tickets import sla  # noqa: E402

DUE = 1_000
SIZES = (10_000, 1_000_000)
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

# Rows 1..500 need a warning, 501..1000 a breach; the rest are resolved (70 %), open with a deadline
# still ahead (20 %: they sit in the partial indexes), or open and already warned and breached (10 %).
FILL = """
INSERT INTO ticket (customer_id, title, description, priority, status, due_at, warn_at, warned_at, breached_at,
                    resolved_at, paused_seconds, escalation_level, created_at, updated_at)
SELECT 1, 'Ticket ' || g, '', 'normal',
       CASE WHEN g <= d THEN 'open' WHEN g % 10 < 7 THEN 'resolved' ELSE 'open' END,
       CASE WHEN g <= d / 2 THEN t + interval '30 minutes'
            WHEN g <= d THEN t - interval '1 minute'
            WHEN g % 10 < 7 THEN t - interval '1 day'
            WHEN g % 10 < 9 THEN t + (g % 5000 + 61) * interval '1 minute'
            ELSE t - interval '2 hours' END,
       CASE WHEN g <= d / 2 THEN t - interval '1 minute'
            WHEN g <= d THEN t - interval '61 minutes'
            WHEN g % 10 < 7 THEN t - interval '25 hours'
            WHEN g % 10 < 9 THEN t + (g % 5000 + 1) * interval '1 minute'
            ELSE t - interval '3 hours' END,
       CASE WHEN g <= d / 2 THEN NULL WHEN g <= d THEN t - interval '61 minutes'
            WHEN g % 10 = 9 THEN t - interval '3 hours' ELSE NULL END,
       CASE WHEN g > d AND g % 10 = 9 THEN t - interval '2 hours' ELSE NULL END,
       CASE WHEN g > d AND g % 10 < 7 THEN t - interval '2 days' ELSE NULL END,
       0, 0, t - interval '3 days', t - interval '3 days'
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g,
     (SELECT CAST(:now AS timestamptz) AS t, CAST(:due AS integer) AS d) AS p
"""


def reset_schema() -> None:
    with db.engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))


def fill(first: int, last: int) -> None:
    db.session.execute(sa.text(FILL), {"due": DUE, "now": NOW, "first": first, "last": last})
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE ticket"))


def timed_runs() -> list[float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = sla.check_sla(now=NOW)
        times.append(time.perf_counter() - start)
        assert (len(result.warned), len(result.breached)) == (DUE // 2, DUE // 2), result.summary()
        db.session.rollback()  # the next run sees the same due tickets
    return times


def plans() -> str:
    lines = []
    connection = db.session.connection()
    for name, statement in (("warnings", sla.warning_statement(NOW)), ("breaches", sla.breach_statement(NOW))):
        compiled = statement.compile(dialect=connection.dialect)
        rows = connection.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + str(compiled), compiled.params)
        plan = [row[0] for row in rows]
        lines.append(f"-- {name}:")
        lines.extend("   " + line for line in plan)
        if not any("Index" in line for line in plan) or any("Seq Scan on ticket" in line for line in plan):
            raise SystemExit(f"the {name} query does not use an index:\n" + "\n".join(plan))
    db.session.rollback()
    return "\n".join(lines)


def main() -> None:
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/opsrelay_bench9")
    uri = database_uri(url, "")
    if not uri.startswith("postgresql"):
        raise SystemExit("this benchmark needs PostgreSQL (DATABASE_URL=postgresql://...)")
    from tests.conftest import ensure_postgres_database

    ensure_postgres_database(uri)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": uri,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4"),
            "SECRET_KEY": "benchmark",
            "EMBEDDED_WORKER": False,
            "TESTING": True,
        }
    )
    with app.app_context():
        reset_schema()
        upgrade()
        try:
            db.session.execute(
                sa.text(
                    "INSERT INTO customer (id, name, timezone, is_active, created_at) "
                    "VALUES (1, 'Bench', 'UTC', true, now())"
                )
            )
            db.session.execute(
                sa.text(
                    "INSERT INTO sla_policy (customer_id, priority, resolution_minutes, warning_minutes, "
                    "business_hours_only, escalation_minutes, escalation_limit, created_at) "
                    "VALUES (1, 'normal', 240, 60, false, 30, 2, now())"
                )
            )
            db.session.commit()
            medians = {}
            filled = 0
            for size in SIZES:
                fill(filled + 1, size)
                filled = size
                runs = timed_runs()
                medians[size] = statistics.median(runs)
                print(
                    f"{size:>9,} tickets, {DUE} due: median {medians[size] * 1000:.1f} ms "
                    f"over {RUNS} runs ({', '.join(f'{t * 1000:.0f}' for t in runs)} ms)"
                )
            print(f"plans of the sweep's selecting queries at {SIZES[-1]:,} tickets:")
            print(plans())
            ratio = medians[SIZES[-1]] / medians[SIZES[0]]
            print(f"ratio: {ratio:.2f}")
        finally:
            db.session.rollback()
            db.session.remove()
            reset_schema()
            db.engine.dispose()


if __name__ == "__main__":
    main()
