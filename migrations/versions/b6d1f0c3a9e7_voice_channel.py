"""voice channel: notification.channel and message_template.channel accept 'voice' (a phone call);
notification_preference.min_severity_voice (critical by default; the channel itself is off until a person
enables it). Downgrading deletes the calls from the delivery log (and any voice template): the old schema
cannot hold them.

Revision ID: b6d1f0c3a9e7
Revises: b3e8f1a9c2d4
Create Date: 2026-12-07 14:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b6d1f0c3a9e7"
down_revision = "b3e8f1a9c2d4"
branch_labels = None
depends_on = None

BEFORE = ("web", "email", "sms", "webhook")
AFTER = (*BEFORE, "voice")
SEVERITIES = ("info", "low", "medium", "high", "critical")
TABLES = ("notification", "message_template")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def _channels(values: tuple[str, ...]) -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_channel"), type_="check")
            batch.create_check_constraint(op.f(f"ck_{table}_channel"), _in("channel", values))


def upgrade():
    _channels(AFTER)
    with op.batch_alter_table("notification_preference") as batch:
        batch.add_column(
            sa.Column("min_severity_voice", sa.String(length=12), nullable=False, server_default="critical")
        )
        batch.create_check_constraint(
            op.f("ck_notification_preference_min_severity_voice"), _in("min_severity_voice", SEVERITIES)
        )


def downgrade():
    with op.batch_alter_table("notification_preference") as batch:
        batch.drop_constraint(op.f("ck_notification_preference_min_severity_voice"), type_="check")
        batch.drop_column("min_severity_voice")
    for table in TABLES:
        rows = sa.table(table, sa.column("channel", sa.String))
        op.execute(rows.delete().where(rows.c.channel == "voice"))
    _channels(BEFORE)
