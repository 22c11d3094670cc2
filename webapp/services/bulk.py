"""Multi-row INSERT ... RETURNING, in batches sized by bound parameters: one statement per batch on
PostgreSQL and SQLite alike (routing 500 users x 3 channels is one statement).

The ORM's add_all() + flush() issues one INSERT per row on SQLite; routing an alert to hundreds of
users must not cost hundreds of statements.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webapp.extensions import db

BATCH = 500  # ids per IN list, and rows per statement for callers that chunk by rows
MAX_PARAMETERS = 30_000  # bound parameters per statement: under SQLite's 32766 and PostgreSQL's 65535


def insert_returning(
    model: type, rows: list[dict], *columns: sa.ColumnElement, ignore_conflicts_on: Iterable[str] | None = None
) -> list[sa.Row]:
    """Insert `rows` (dicts with the same keys) and return `columns` of the rows inserted, in no set order.

    With `ignore_conflicts_on`, rows that collide with that unique key are skipped
    (ON CONFLICT DO NOTHING) and return nothing: the database decides, not a read before a write.
    """
    if not rows:
        return []
    table = model.__table__
    statement = _insert(table, ignore_conflicts_on).returning(
        *(table.c[c.key] for c in columns), sort_by_parameter_order=False
    )
    db.session.flush()  # ORM objects the rows may refer to go first, as session.execute would
    return list(db.session.connection().execute(statement, rows, execution_options=_pages(rows)).all())


def insert_returning_objects(
    model: type, rows: list[dict], *, ignore_conflicts_on: Iterable[str] | None = None
) -> list:
    """As insert_returning, but the inserted rows come back whole, as ORM objects in the session
    (RETURNING every column): no second statement to read back what was just written. In no set order."""
    if not rows:
        return []
    statement = _insert(model, ignore_conflicts_on).returning(model, sort_by_parameter_order=False)
    return list(db.session.scalars(statement, rows, execution_options=_pages(rows)))


def _insert(target, ignore_conflicts_on: Iterable[str] | None):
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(target)
    if ignore_conflicts_on is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(ignore_conflicts_on))
    return statement


def _pages(rows: list[dict]) -> dict:
    """One compiled statement (cached), sent as multi-row VALUES pages ("insertmanyvalues") sized by parameters."""
    return {"insertmanyvalues_page_size": max(1, MAX_PARAMETERS // len(rows[0]))}


def expire(model: type, ids: list[int]) -> None:
    """Objects of `model` already in the session whose rows a Core UPDATE changed: reload on next access."""
    wanted = set(ids)
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, model) and obj.id in wanted:
            db.session.expire(obj)
