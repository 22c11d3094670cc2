"""security: user.session_version (every session, remember-me cookie and API token carries it; raising it
signs the user out everywhere)

Existing users start at 1; sessions made before this revision (which carry no version) must sign in again.

Revision ID: 9089338994e6
Revises: 21668592deb4
Create Date: 2026-12-01 17:28:43.997408

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "9089338994e6"
down_revision = "21668592deb4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))


def downgrade():
    with op.batch_alter_table("user") as batch:
        batch.drop_column("session_version")
