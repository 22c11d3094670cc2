"""events: the dedup key is unique per customer. event.customer_scope (the customer id, 0 for none) joins the
unique constraint (source, customer_scope, dedup_key, status), so one customer's sender cannot send a dedup key
that makes another customer's alert a "duplicate" nobody is paged for.

Existing events take the scope of their customer; the old constraint is already satisfied by every row, so the
new, wider one is too. On SQLite the event table is rebuilt (batch), keeping AUTOINCREMENT.

Revision ID: 5d2f8a4c6e13
Revises: 3b8e1d5f2a60
Create Date: 2026-12-01 20:45:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5d2f8a4c6e13"
down_revision = "3b8e1d5f2a60"
branch_labels = None
depends_on = None

OLD = ("source", "dedup_key", "status")
NEW = ("source", "customer_scope", "dedup_key", "status")


def _batch():
    return op.batch_alter_table("event", table_kwargs={"sqlite_autoincrement": True})


def upgrade():
    with _batch() as batch:
        batch.add_column(sa.Column("customer_scope", sa.Integer(), nullable=False, server_default="0"))
    event = sa.table("event", sa.column("customer_id", sa.Integer), sa.column("customer_scope", sa.Integer))
    op.execute(event.update().where(event.c.customer_id.is_not(None)).values(customer_scope=event.c.customer_id))
    with _batch() as batch:
        batch.drop_constraint("uq_event_source_dedup_key_status", type_="unique")
        batch.create_unique_constraint("uq_event_source_customer_scope_dedup_key_status", list(NEW))


def downgrade():
    """Fails (unique violation) if two customers' events now share a source, dedup key and status: those
    could not live in the old schema."""
    with _batch() as batch:
        batch.drop_constraint("uq_event_source_customer_scope_dedup_key_status", type_="unique")
        batch.create_unique_constraint("uq_event_source_dedup_key_status", list(OLD))
    with _batch() as batch:
        batch.drop_column("customer_scope")
