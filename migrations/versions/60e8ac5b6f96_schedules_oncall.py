"""schedules (on call): schedule, schedule_layer (rotations: members, hand-off, restrictions), schedule_override
(ix_schedule_override_schedule_ends: the overrides covering an instant, never the history) and schedule_feed
(a person's iCal feed token, hashed). New tables only.

Revision ID: 60e8ac5b6f96
Revises: b3e7d1a9c4f2
Create Date: 2026-12-07 13:28:34.972578

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "60e8ac5b6f96"
down_revision = "b3e7d1a9c4f2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("next_notice_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_schedule_customer_id_customer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule")),
        sqlite_autoincrement=True,  # ids never reused (see 7c3f9e2a4d18)
    )
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedule_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_schedule_next_notice_at", ["next_notice_at"], unique=False)

    op.create_table(
        "schedule_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_schedule_feed_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_feed")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_schedule_feed_token_hash")),
        sa.UniqueConstraint("user_id", name=op.f("uq_schedule_feed_user_id")),
        sqlite_autoincrement=True,  # ids never reused (see 7c3f9e2a4d18)
    )
    op.create_table(
        "schedule_layer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column(
            "rotation",
            sa.Enum("daily", "weekly", "custom", name="rotation", native_enum=False, create_constraint=True, length=10),
            nullable=False,
        ),
        sa.Column("rotation_hours", sa.Integer(), nullable=False),
        sa.Column("handoff_time", sa.Time(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("member_ids", sa.JSON(), nullable=False),
        sa.Column("restrictions", sa.JSON(), nullable=False),
        sa.CheckConstraint("rotation_hours > 0", name=op.f("ck_schedule_layer_rotation_hours_positive")),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedule.id"], name=op.f("fk_schedule_layer_schedule_id_schedule"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_layer")),
        sqlite_autoincrement=True,  # ids never reused (see 7c3f9e2a4d18)
    )
    with op.batch_alter_table("schedule_layer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedule_layer_schedule_id"), ["schedule_id"], unique=False)

    op.create_table(
        "schedule_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_schedule_override_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_schedule_override_created_by_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedule.id"], name=op.f("fk_schedule_override_schedule_id_schedule"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_schedule_override_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_override")),
        sqlite_autoincrement=True,  # ids never reused (see 7c3f9e2a4d18)
    )
    with op.batch_alter_table("schedule_override", schema=None) as batch_op:
        batch_op.create_index("ix_schedule_override_schedule_ends", ["schedule_id", "ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_schedule_override_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("schedule_override", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedule_override_user_id"))
        batch_op.drop_index("ix_schedule_override_schedule_ends")

    op.drop_table("schedule_override")
    with op.batch_alter_table("schedule_layer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedule_layer_schedule_id"))

    op.drop_table("schedule_layer")
    op.drop_table("schedule_feed")
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.drop_index("ix_schedule_next_notice_at")
        batch_op.drop_index(batch_op.f("ix_schedule_customer_id"))

    op.drop_table("schedule")
