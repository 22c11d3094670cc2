"""Routing one critical alert to a customer of 500 users against the baseline of a customer of 10.

Prints statements and time per recipient row for both; the last line is the per-row time ratio (500 / 10):
below 1 means the fixed statement count amortises over the users, as it should. Uses a scratch database
named after DATABASE_URL's (created, migrated, dropped), or a temporary SQLite file.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.config import database_uri  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Customer, EventStatus, PhoneNumber, Severity, User, user_customer  # noqa: E402
from webapp.services.events import ingest  # noqa: E402
from webapp.sources.normalised import NormalisedEvent  # noqa: E402

RUNS = 7


def scratch_database() -> tuple[str, callable]:
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/opsrelay")
    if url.startswith("sqlite"):
        path = Path(tempfile.mkdtemp()) / "bench.sqlite3"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    target = sa.engine.make_url(database_uri(url, ""))
    scratch = target.set(database=f"{target.database}_routing_bench")
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch.database}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{scratch.database}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
        admin.dispose()

    return scratch.render_as_string(hide_password=False), drop


def crowd(name: str, size: int) -> int:
    customer = Customer(name=name)
    db.session.add(customer)
    db.session.flush()
    roles = ("operator", "viewer")
    ids = [
        row.id
        for row in db.session.execute(
            sa.insert(User).returning(User.id),
            [
                {"email": f"{name}{i}@example.com", "name": f"{name} {i}", "password_hash": "x", "role": roles[i % 2]}
                for i in range(size)
            ],
        )
    ]
    db.session.execute(sa.insert(user_customer), [{"user_id": i, "customer_id": customer.id} for i in ids])
    db.session.execute(
        sa.insert(PhoneNumber),
        [{"user_id": i, "number": f"+1415{k:07d}", "is_primary": True} for k, i in enumerate(ids)],
    )
    db.session.commit()
    return customer.id


def measure(customer_id: int, tag: str) -> tuple[int, int, float]:
    """(statements, rows, seconds) of routing one new critical alert to the customer; rolled back after."""
    statements = []
    counter = lambda *args: statements.append(1)  # noqa: E731
    sa.event.listen(db.engine, "before_cursor_execute", counter)
    item = NormalisedEvent(
        source="bench", dedup_key=tag, status=EventStatus.FIRING, severity=Severity.CRITICAL,
        title="DiskFull", customer_id=customer_id,
    )  # fmt: skip
    started = time.perf_counter()
    result = ingest.ingest([item])
    elapsed = time.perf_counter() - started
    sa.event.remove(db.engine, "before_cursor_execute", counter)
    db.session.rollback()
    return len(statements), len(result.notifications), elapsed


def main() -> None:
    uri, cleanup = scratch_database()
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "TESTING": True, "EMBEDDED_WORKER": False})
        with app.app_context():
            upgrade()
            small, large = crowd("small", 10), crowd("large", 500)
            results = {}
            for label, customer_id in (("10 users", small), ("500 users", large)):
                runs = [measure(customer_id, f"{label}-{n}") for n in range(RUNS)]
                statements, rows = runs[0][0], runs[0][1]
                seconds = statistics.median(r[2] for r in runs[1:])  # the first warms caches
                results[label] = (statements, rows, seconds)
                print(f"{label}: {statements} statements, {rows} rows, {seconds * 1000:.1f} ms, "
                      f"{seconds / rows * 1e6:.0f} µs per row")  # fmt: skip
            db.session.remove()
            db.engine.dispose()
        (s10, r10, t10), (s500, r500, t500) = results["10 users"], results["500 users"]
        print(f"statements ratio (500 / 10): {s500 / s10:.2f}")
        print(f"ratio: {(t500 / r500) / (t10 / r10):.3f}")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
