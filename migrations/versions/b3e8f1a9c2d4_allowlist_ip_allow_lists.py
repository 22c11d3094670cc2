"""IP allow-lists: api_key.allowed_ips and webhook_source.allowed_ips, JSON lists of networks (CIDR) the key or
the source's webhooks are accepted from. Existing rows get [] (accepted from anywhere, as before).

Revision ID: b3e8f1a9c2d4
Revises: 7a41c9e2b5d8
Create Date: 2026-12-07 13:45:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b3e8f1a9c2d4"
down_revision = "7a41c9e2b5d8"
branch_labels = None
depends_on = None

TABLES = ("api_key", "webhook_source")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("allowed_ips", sa.JSON(), nullable=False, server_default="[]"))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("allowed_ips")
