"""incidents: indexes for the console's open list and most-severe-first order

The console's default list is the open incidents (triggered or acknowledged): two states, which an index on
(state, id) cannot give in one id order, so a partial index over the open ones (few, beside a long history
of resolved ones) serves newest first, most severe first and a customer's open incidents; and most severe
first across every state reads (severity_rank, id).

Revision ID: 6fd7ada91d28
Revises: a1c3e5f7b9d2
Create Date: 2026-12-01 18:09:12.447653

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "6fd7ada91d28"
down_revision = "a1c3e5f7b9d2"
branch_labels = None
depends_on = None

OPEN = "state IN ('triggered', 'acknowledged')"
PARTIAL = {
    "ix_incident_open_id": ["id"],
    "ix_incident_open_rank_id": ["severity_rank", "id"],
    "ix_incident_open_customer_id": ["customer_id", "id"],
}


def upgrade():
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.create_index("ix_incident_rank_id", ["severity_rank", "id"])
        for name, columns in PARTIAL.items():
            batch_op.create_index(name, columns, postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade():
    with op.batch_alter_table("incident", schema=None) as batch_op:
        for name in PARTIAL:
            batch_op.drop_index(name)
        batch_op.drop_index("ix_incident_rank_id")
