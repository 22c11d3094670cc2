"""Benchmark: who is on call costs the same for a schedule made last week and one made five years ago.

In one database it makes 1,000 schedules of 3 layers x 10 members that started a week ago (an override each
day of that week) and 1,000 alike that started five years ago (an override every week of those five years,
about 261,000 rows), then asks `oncall.on_call_user_ids` for each set at the same instant RUNS times and
takes the medians. The history is never walked (hand-offs are arithmetic from each layer's anchor, and the
override lookup reads ix_schedule_override_schedule_ends from the instant on), so the last line,
`ratio: <5 years / 1 week>`, stays near 1 (aim: <= 1.2).

    .venv/bin/python benchmarks/oncall.py   (DATABASE_URL: default the local PostgreSQL, database opsrelay_bench_oncall)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from benchmarks.stack import empty_database, fresh_database  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Schedule, ScheduleLayer, ScheduleOverride, User  # noqa: E402
from webapp.services import oncall  # noqa: E402

SCHEDULES, LAYERS, MEMBERS = 1_000, 3, 10
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ROTATIONS = ("weekly", "daily", "custom")


DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/opsrelay_bench_oncall"


def _app():
    """The app on the benchmark's own database (DATABASE_URL, default the local PostgreSQL), fresh at head."""
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
    if url.startswith("sqlite:"):
        uri = url
        Path(uri.removeprefix("sqlite:///")).unlink(missing_ok=True)
    else:
        uri = fresh_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "SECRET_KEY": "bench", "TESTING": True, "EMBEDDED_WORKER": False})
    with app.app_context():
        upgrade()
    return app


def _fill(age: timedelta, override_every: timedelta, users: list[int], label: str) -> list[int]:
    """SCHEDULES schedules whose layers started `age` ago, with an 8-hour override every `override_every`."""
    started = (NOW - age).date()
    ids = list(
        db.session.scalars(
            sa.insert(Schedule).returning(Schedule.id),
            [{"name": f"{label} {n}", "time_zone": "Europe/Paris"} for n in range(SCHEDULES)],
        )
    )
    db.session.execute(
        sa.insert(ScheduleLayer),
        [
            {
                "schedule_id": schedule_id,
                "position": position,
                "name": f"layer {position}",
                "rotation": ROTATIONS[position],
                "rotation_hours": 12,
                "handoff_time": clock(9, 0),
                "starts_on": started,
                "member_ids": [users[(n + position + k) % len(users)] for k in range(MEMBERS)],
                "restrictions": [{"days": [0, 1, 2, 3, 4], "from": "09:00", "to": "18:00"}] if position == 2 else [],
            }
            for n, schedule_id in enumerate(ids)
            for position in range(LAYERS)
        ],
    )
    steps = int(age / override_every)
    rows = [
        {
            "schedule_id": schedule_id,
            "user_id": users[(n + k) % len(users)],
            "starts_at": NOW - age + k * override_every,
            "ends_at": NOW - age + k * override_every + timedelta(hours=8),
            "note": "",
        }
        for n, schedule_id in enumerate(ids)
        for k in range(steps)
    ]
    for start in range(0, len(rows), 20_000):
        db.session.execute(sa.insert(ScheduleOverride), rows[start : start + 20_000])
    db.session.commit()
    print(f"{label}: {SCHEDULES} schedules, {len(rows)} overrides")
    return ids


def _median(ids: list[int]) -> float:
    timings = []
    for _ in range(RUNS):
        db.session.expunge_all()
        started = time.perf_counter()
        answer = oncall.on_call_user_ids(ids, NOW)
        timings.append(time.perf_counter() - started)
        assert all(answer[i] for i in ids), "every schedule has someone on call"
    return statistics.median(timings)


def main() -> None:
    app = _app()
    with app.app_context():
        users = list(
            db.session.scalars(
                sa.insert(User).returning(User.id),
                [{"email": f"member{n}@example.com", "name": f"Member {n}", "password_hash": "x"} for n in range(40)],
            )
        )
        week = _fill(timedelta(days=7), timedelta(days=1), users, "1 week")
        years = _fill(timedelta(days=5 * 365 + 1), timedelta(days=7), users, "5 years")
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        _median(week), _median(years)  # warm up
        short, long = _median(week), _median(years)
        print(f"backend: {db.engine.dialect.name}, runs: {RUNS}")
        print(f"1 week:  {short * 1000:.1f} ms for {SCHEDULES} schedules")
        print(f"5 years: {long * 1000:.1f} ms for {SCHEDULES} schedules")
        ratio = long / short
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            db.engine.dispose()
            empty_database(db.engine.url.render_as_string(hide_password=False))  # clean up
        print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
