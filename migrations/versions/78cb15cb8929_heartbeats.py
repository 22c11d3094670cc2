"""heartbeats: named check-in URLs per customer; a missed check-in opens an alert (a new table only)

Revision ID: 78cb15cb8929
Revises: 7c3f9e2a4d18
Create Date: 2026-12-01 17:39:15.735297

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "78cb15cb8929"
down_revision = "7c3f9e2a4d18"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "heartbeat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.Column(
            "severity",
            sa.Enum(
                "info",
                "low",
                "medium",
                "high",
                "critical",
                name="severity",
                native_enum=False,
                create_constraint=True,
                length=12,
            ),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("last_checkin_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("interval_seconds > 0 AND grace_seconds >= 0", name=op.f("ck_heartbeat_timing_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_heartbeat_customer_id_customer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat")),
        sa.UniqueConstraint("customer_id", "name", name=op.f("uq_heartbeat_customer_id_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_heartbeat_token_hash")),
        sqlite_autoincrement=True,  # ids never reused (see 7c3f9e2a4d18)
    )
    with op.batch_alter_table("heartbeat", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_heartbeat_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_heartbeat_watch",
            ["due_at"],
            unique=False,
            postgresql_where=sa.text("paused = false AND missed_at IS NULL"),
            sqlite_where=sa.text("paused = 0 AND missed_at IS NULL"),
        )


def downgrade():
    with op.batch_alter_table("heartbeat", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_heartbeat_watch",
            postgresql_where=sa.text("paused = false AND missed_at IS NULL"),
            sqlite_where=sa.text("paused = 0 AND missed_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_heartbeat_customer_id"))

    op.drop_table("heartbeat")
