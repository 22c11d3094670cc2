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
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    if not rows:
        return []
    per_statement = max(1, MAX_PARAMETERS // len(rows[0]))
    table = model.__table__
    statement = insert(table)
    if ignore_conflicts_on is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(ignore_conflicts_on))
    # One compiled statement (cached), sent as multi-row VALUES pages ("insertmanyvalues").
    statement = statement.returning(
        *(table.c[c.key] for c in columns), sort_by_parameter_order=False
    ).execution_options(insertmanyvalues_page_size=per_statement)
    db.session.flush()  # ORM objects the rows may refer to go first, as session.execute would
    return list(db.session.connection().execute(statement, rows).all())
