"""notification preferences: the storm guard (on by default): storm_guard, storm_sms_limit (5),
storm_email_limit (10), storm_window_minutes (10). Existing preferences take the defaults (server defaults), so
the guard is on for everyone after the upgrade, as for a user without any preference. notification: the
partial index ix_notification_storm (a person's latest counted messages on one channel).

Revision ID: 7a41c9e2b5d8
Revises: 5d2f8a4c6e13
Create Date: 2026-12-01 21:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "7a41c9e2b5d8"
down_revision = "5d2f8a4c6e13"
branch_labels = None
depends_on = None

COUNTED = sa.text("status NOT IN ('deferred', 'suppressed')")  # messages sent or on their way


def upgrade():
    with op.batch_alter_table("notification_preference") as batch:
        batch.add_column(sa.Column("storm_guard", sa.Boolean(), nullable=False, server_default=sa.text("true")))
        batch.add_column(sa.Column("storm_sms_limit", sa.Integer(), nullable=False, server_default="5"))
        batch.add_column(sa.Column("storm_email_limit", sa.Integer(), nullable=False, server_default="10"))
        batch.add_column(sa.Column("storm_window_minutes", sa.Integer(), nullable=False, server_default="10"))
        batch.create_check_constraint(
            op.f("ck_notification_preference_storm_positive"),
            "storm_sms_limit > 0 AND storm_email_limit > 0 AND storm_window_minutes > 0",
        )

    with op.batch_alter_table("notification") as batch:
        batch.create_index(
            "ix_notification_storm",
            ["user_id", "channel", "created_at"],
            unique=False,
            postgresql_where=COUNTED,
            sqlite_where=COUNTED,
        )


def downgrade():
    with op.batch_alter_table("notification") as batch:
        batch.drop_index(
            "ix_notification_storm",
            postgresql_where=COUNTED,
            sqlite_where=COUNTED,
        )
    with op.batch_alter_table("notification_preference") as batch:
        batch.drop_constraint(op.f("ck_notification_preference_storm_positive"), type_="check")
        batch.drop_column("storm_window_minutes")
        batch.drop_column("storm_email_limit")
        batch.drop_column("storm_sms_limit")
        batch.drop_column("storm_guard")
