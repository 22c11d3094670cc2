"""ingest: events are stored by a sender's request and routed by a job (issue 19). event: routed_at (None:
waiting for the routing job; existing events were routed when stored, so they take their created_at),
incident_key and follow_up (what the job needs besides the columns), and the partial index ix_event_unrouted
that the recovery sweep reads.

Revision ID: b3e7d1a9c4f2
Revises: b6d1f0c3a9e7
Create Date: 2026-12-07 13:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b3e7d1a9c4f2"
down_revision = "b6d1f0c3a9e7"
branch_labels = None
depends_on = None

UNROUTED = sa.text("routed_at IS NULL")


def upgrade():
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("incident_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("follow_up", sa.JSON(), nullable=True))
    op.execute("UPDATE event SET routed_at = created_at")
    with op.batch_alter_table("event") as batch:
        batch.create_index(
            "ix_event_unrouted", ["created_at"], unique=False, postgresql_where=UNROUTED, sqlite_where=UNROUTED
        )


def downgrade():
    with op.batch_alter_table("event") as batch:
        batch.drop_index("ix_event_unrouted", postgresql_where=UNROUTED, sqlite_where=UNROUTED)
        batch.drop_column("follow_up")
        batch.drop_column("incident_key")
        batch.drop_column("routed_at")
