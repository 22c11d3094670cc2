"""policies: escalation policies (ordered steps: everyone routing pages, users, a role, the on-call of a
schedule; waits; repeats), the routing rules that attach them to incidents by source / customer / severity, and
incident.policy_id. Creates the default policy, which reproduces the escalation before policies: everyone
routing pages when the incident opens, then the customer's admins (all admins if it has none), then all
admins, at the waits and up to the number of levels of the customer's SLA policy (sla_timing). Existing
incidents keep policy_id NULL: they walk the default policy, as before.

Revision ID: b7e4d2a9c1f3
Revises: c4a7e1d93b52 (main: … → schedules 60e8ac5b6f96 → chat c4a7e1d93b52)
Create Date: 2026-12-07 13:45:00.000000

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b7e4d2a9c1f3"
down_revision = "c4a7e1d93b52"  # main's head (after schedules, whose table a step names)
branch_labels = None
depends_on = None

ROLE = sa.Enum("admin", "operator", "viewer", name="role", native_enum=False, create_constraint=True, length=12)
SEVERITY = sa.Enum(
    "info", "low", "medium", "high", "critical", name="severity", native_enum=False, create_constraint=True, length=12
)
DEFAULT_WHERE = sa.text("is_default")


def upgrade():
    op.create_table(
        "escalation_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("repeat", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sla_timing", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("repeat >= 0 AND repeat <= 9", name=op.f("ck_escalation_policy_repeat_range")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_escalation_policy_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_policy")),
        sqlite_autoincrement=True,  # ids never reused (see 7c3f9e2a4d18)
    )
    with op.batch_alter_table("escalation_policy") as batch:
        batch.create_index(batch.f("ix_escalation_policy_customer_id"), ["customer_id"], unique=False)
        batch.create_index(
            "ix_escalation_policy_one_default",
            ["is_default"],
            unique=True,
            postgresql_where=DEFAULT_WHERE,
            sqlite_where=DEFAULT_WHERE,
        )
    op.create_table(
        "escalation_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("everyone", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("user_ids", sa.JSON(), nullable=False),
        sa.Column("role", ROLE, nullable=True),
        sa.Column("role_scope", sa.String(length=10), server_default="customer", nullable=False),
        sa.Column("wait_minutes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.CheckConstraint("wait_minutes >= 0", name=op.f("ck_escalation_step_wait_nonnegative")),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedule.id"],
            name=op.f("fk_escalation_step_schedule_id_schedule"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["escalation_policy.id"],
            name=op.f("fk_escalation_step_policy_id_escalation_policy"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_step")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("escalation_step") as batch:
        batch.create_index("ix_escalation_step_policy_position", ["policy_id", "position"], unique=False)
    op.create_table(
        "escalation_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("min_severity", SEVERITY, nullable=True),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_escalation_rule_customer_id_customer"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["escalation_policy.id"],
            name=op.f("fk_escalation_rule_policy_id_escalation_policy"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_rule")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("escalation_rule") as batch:
        batch.create_index(batch.f("ix_escalation_rule_customer_id"), ["customer_id"], unique=False)
        batch.create_index(batch.f("ix_escalation_rule_policy_id"), ["policy_id"], unique=False)
    with op.batch_alter_table("incident") as batch:
        batch.add_column(sa.Column("policy_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_incident_policy_id_escalation_policy"),
            "escalation_policy",
            ["policy_id"],
            ["id"],
            ondelete="SET NULL",
        )
    _create_default_policy()


def _create_default_policy():
    """The escalation before policies, as a policy (webapp.services.routing.policies.builtin_default)."""
    now = datetime.now(UTC)
    policy = sa.table(
        "escalation_policy",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("repeat", sa.Integer),
        sa.column("sla_timing", sa.Boolean),
        sa.column("is_default", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    step = sa.table(
        "escalation_step",
        sa.column("policy_id", sa.Integer),
        sa.column("position", sa.Integer),
        sa.column("everyone", sa.Boolean),
        sa.column("user_ids", sa.JSON),
        sa.column("role", sa.String),
        sa.column("role_scope", sa.String),
        sa.column("wait_minutes", sa.Integer),
    )
    connection = op.get_bind()
    policy_id = connection.execute(
        sa.insert(policy)
        .values(
            name="Default (SLA escalation)",
            repeat=0,
            sla_timing=True,
            is_default=True,
            created_at=now,
            updated_at=now,
        )
        .returning(policy.c.id)
    ).scalar_one()
    connection.execute(
        sa.insert(step),
        [
            {"policy_id": policy_id, "user_ids": [], "wait_minutes": 0, **row}
            for row in (
                {"position": 0, "everyone": True, "role": None, "role_scope": "customer"},
                {"position": 1, "everyone": False, "role": "admin", "role_scope": "customer"},
                {"position": 2, "everyone": False, "role": "admin", "role_scope": "all"},
            )
        ],
    )


def downgrade():
    with op.batch_alter_table("incident") as batch:
        batch.drop_constraint(batch.f("fk_incident_policy_id_escalation_policy"), type_="foreignkey")
        batch.drop_column("policy_id")
    with op.batch_alter_table("escalation_rule") as batch:
        batch.drop_index(batch.f("ix_escalation_rule_policy_id"))
        batch.drop_index(batch.f("ix_escalation_rule_customer_id"))
    op.drop_table("escalation_rule")
    with op.batch_alter_table("escalation_step") as batch:
        batch.drop_index("ix_escalation_step_policy_position")
    op.drop_table("escalation_step")
    with op.batch_alter_table("escalation_policy") as batch:
        batch.drop_index("ix_escalation_policy_one_default", postgresql_where=DEFAULT_WHERE, sqlite_where=DEFAULT_WHERE)
        batch.drop_index(batch.f("ix_escalation_policy_customer_id"))
    op.drop_table("escalation_policy")
