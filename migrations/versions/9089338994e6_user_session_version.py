"""security: user.session_version (every session, remember-me cookie and API token carries it; raising it
signs the user out everywhere); phone_number.verify_code_encrypted (the live verification code, for the SMS
alone) and verification SMS bodies hidden in the delivery log.

Existing users start at 1; sessions made before this revision (which carry no version) must sign in again.
Verification SMS already stored with their code get the body "verification code (hidden)".

Revision ID: 9089338994e6
Revises: 78cb15cb8929
Create Date: 2026-12-01 17:28:43.997408

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "9089338994e6"
down_revision = "78cb15cb8929"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("phone_number") as batch:
        batch.add_column(sa.Column("verify_code_encrypted", sa.String(length=255), nullable=True))
    notification = sa.table(
        "notification", sa.column("body", sa.Text), sa.column("subject", sa.String), sa.column("event_id", sa.Integer)
    )
    op.execute(
        notification.update()
        .where(notification.c.subject == "Phone verification", notification.c.event_id.is_(None))
        .values(body="verification code (hidden)")
    )


def downgrade():
    with op.batch_alter_table("phone_number") as batch:
        batch.drop_column("verify_code_encrypted")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("session_version")
