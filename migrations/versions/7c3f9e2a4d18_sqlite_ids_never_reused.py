"""sqlite ids never reused: AUTOINCREMENT on every table with an integer id

Revision ID: 7c3f9e2a4d18
Revises: 5a1e0c7d9b21
Create Date: 2026-12-01 18:00:00.000000

Without AUTOINCREMENT, SQLite gives a new row max(id) + 1, so deleting the newest ticket let the next
one reuse its id and its key (OPS-4 again), and dedup keys built from ids matched the old row. Each
table is rebuilt (batch "recreate") with AUTOINCREMENT, keeping its rows, indexes (partial ones with
their WHERE) and constraints; sqlite_sequence starts at the highest id in use. PostgreSQL sequences
never hand an id out twice: nothing to do there.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "7c3f9e2a4d18"
down_revision = "5a1e0c7d9b21"
branch_labels = None
depends_on = None


def _tables_with_integer_ids(connection) -> list[str]:
    inspector = sa.inspect(connection)
    names = []
    for name in inspector.get_table_names():
        if name in ("alembic_version", "sqlite_sequence"):
            continue
        primary = inspector.get_pk_constraint(name)["constrained_columns"]
        if primary == ["id"]:
            names.append(name)
    return names


def _partial_indexes(connection, table: str) -> list[str]:
    """CREATE INDEX statements with a WHERE clause: re-run after the rebuild, as written."""
    rows = connection.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql LIKE '%WHERE%'"),
        {"t": table},
    )
    return [row[0] for row in rows]


def _set_autoincrement(enabled: bool) -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    for table in _tables_with_integer_ids(connection):
        partial = _partial_indexes(connection, table)
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": enabled}):
            pass
        for statement in partial:
            name = statement.split("INDEX", 1)[1].split("ON", 1)[0].strip().strip('"')
            connection.execute(sa.text(f'DROP INDEX IF EXISTS "{name}"'))
            connection.execute(sa.text(statement))
        if enabled:
            highest = connection.execute(sa.select(sa.func.max(sa.table(table, sa.column("id")).c.id))).scalar()
            if highest is not None:
                connection.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
                connection.execute(
                    sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :s)"), {"t": table, "s": highest}
                )


def upgrade():
    _set_autoincrement(True)


def downgrade():
    _set_autoincrement(False)
