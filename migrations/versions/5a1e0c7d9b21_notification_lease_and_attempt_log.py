"""notification lease and attempt log

Revision ID: 5a1e0c7d9b21
Revises: 6fd7ada91d28
Create Date: 2026-12-01 17:45:00.000000

The delivery claim becomes a lease a live worker renews (claimed_by, lease_expires_at), and every
attempt is kept with its provider id (attempt_log). Rows already in flight get an empty log; a row
left `sending` by the old code has no lease and is recovered by its claim time, as before.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5a1e0c7d9b21"
down_revision = "6fd7ada91d28"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempt_log", sa.JSON(), nullable=True))
    op.execute("UPDATE notification SET attempt_log = '[]'")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.alter_column("attempt_log", existing_type=sa.JSON(), nullable=False)


def downgrade():
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_column("attempt_log")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("claimed_by")
