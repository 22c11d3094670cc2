"""chat channels (Slack, Microsoft Teams): the chat_channel table (a customer's incoming webhooks, URL
encrypted), notification.chat_channel_id (the channel a row goes to), a person's own Slack / Teams webhook and
minimum severities on notification_preference, and the two new channel names in the `channel` CHECK
constraints of notification and message_template.

Revision ID: c4a7e1d93b52
Revises: 60e8ac5b6f96
Create Date: 2026-12-07 13:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c4a7e1d93b52"
down_revision = "60e8ac5b6f96"
branch_labels = None
depends_on = None

OLD_CHANNELS = ("web", "email", "sms", "webhook", "voice")
CHAT = ("slack", "teams")
SEVERITIES = ("info", "low", "medium", "high", "critical")


def _severity(name: str) -> sa.Enum:
    return sa.Enum(*SEVERITIES, name=name, native_enum=False, create_constraint=True, length=12)


def _channels(table: str, names: tuple[str, ...]) -> None:
    """The `channel` CHECK constraint of `table` allows exactly `names`."""
    constraint = op.f(f"ck_{table}_channel")
    if op.get_bind().dialect.name == "sqlite":  # a CHECK lives in the table's DDL: rebuild it with the new one
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(constraint, type_="check")
            batch.create_check_constraint(constraint, sa.column("channel").in_(names))
        return
    op.drop_constraint(constraint, table, type_="check")
    op.create_check_constraint(constraint, table, sa.column("channel").in_(names))


def upgrade():
    op.create_table(
        "chat_channel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("webhook_url_encrypted", sa.Text(), nullable=True),
        sa.Column("min_severity", _severity("chat_min_severity"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('slack', 'teams')", name=op.f("ck_chat_channel_kind_known")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_chat_channel_customer_id_customer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_channel")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_chat_channel_customer_id"), "chat_channel", ["customer_id"], unique=False)

    _channels("notification", OLD_CHANNELS + CHAT)
    _channels("message_template", OLD_CHANNELS + CHAT)
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("chat_channel_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_notification_chat_channel_id"), ["chat_channel_id"], unique=False)
        batch.create_unique_constraint(
            batch.f("uq_notification_event_id_chat_channel_id"), ["event_id", "chat_channel_id"]
        )
        batch.create_foreign_key(
            batch.f("fk_notification_chat_channel_id_chat_channel"),
            "chat_channel",
            ["chat_channel_id"],
            ["id"],
            ondelete="CASCADE",
        )

    with op.batch_alter_table("notification_preference") as batch:
        for channel in CHAT:
            batch.add_column(
                sa.Column(
                    f"min_severity_{channel}",
                    sa.String(length=12),
                    nullable=False,
                    server_default="high",
                )
            )
            batch.add_column(sa.Column(f"{channel}_webhook_url_encrypted", sa.Text(), nullable=True))
            batch.create_check_constraint(
                op.f(f"ck_notification_preference_min_severity_{channel}"),
                sa.column(f"min_severity_{channel}").in_(SEVERITIES),
            )


def downgrade():
    with op.batch_alter_table("notification_preference") as batch:
        for channel in reversed(CHAT):
            batch.drop_constraint(op.f(f"ck_notification_preference_min_severity_{channel}"), type_="check")
            batch.drop_column(f"{channel}_webhook_url_encrypted")
            batch.drop_column(f"min_severity_{channel}")

    op.execute(sa.text("DELETE FROM notification WHERE channel IN ('slack', 'teams')"))
    op.execute(sa.text("DELETE FROM message_template WHERE channel IN ('slack', 'teams')"))
    with op.batch_alter_table("notification") as batch:
        batch.drop_constraint(batch.f("fk_notification_chat_channel_id_chat_channel"), type_="foreignkey")
        batch.drop_constraint(batch.f("uq_notification_event_id_chat_channel_id"), type_="unique")
        batch.drop_index(batch.f("ix_notification_chat_channel_id"))
        batch.drop_column("chat_channel_id")
    _channels("message_template", OLD_CHANNELS)
    _channels("notification", OLD_CHANNELS)

    op.drop_index(op.f("ix_chat_channel_customer_id"), table_name="chat_channel")
    op.drop_table("chat_channel")
