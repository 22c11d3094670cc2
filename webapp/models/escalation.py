"""Escalation policies: who is paged when an incident opens, and who next while nobody acknowledges it.

A policy is an ordered chain of steps. Each step names its targets (the on-call of a schedule, some users, the
users of a role, or "everyone routing would page": the subscribers of the event by their preferences), how long
to wait before the next step, and optionally one channel to use whatever the person's preferences. After the
last step the chain runs again, `repeat` more times.

A routing rule attaches a policy to the incidents of a source, a customer and/or a minimum severity; the first
rule that matches wins, else the default policy (the one `is_default` row, made by the migration), which
reproduces the escalation of the SLA policies: its waits and its number of steps come from the customer's SLA
policy for the incident's priority (`sla_timing`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import Role, Severity, UtcDateTime, str_enum, utcnow

ROLE_SCOPES = ("customer", "all")  # the role's users of the incident's customer (all if none), or all of them


class EscalationPolicy(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    repeat: Mapped[int] = mapped_column(default=0, server_default="0")  # the chain runs 1 + repeat times
    # Waits and the number of steps taken from the customer's SLA policy (the behaviour before policies).
    sla_timing: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_default: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    steps: Mapped[list[EscalationStep]] = relationship(
        back_populates="policy", order_by="EscalationStep.position", cascade="all, delete-orphan"
    )
    # The routing rules that choose it (read-only here: the database deletes them with the policy).
    rules: Mapped[list[EscalationRule]] = relationship(viewonly=True, order_by="EscalationRule.id")

    __table_args__ = (
        sa.CheckConstraint("repeat >= 0 AND repeat <= 9", name="repeat_range"),
        # At most one default policy: the database decides.
        sa.Index(
            "ix_escalation_policy_one_default",
            "is_default",
            unique=True,
            postgresql_where=sa.text("is_default"),
            sqlite_where=sa.text("is_default"),
        ),
    )


class EscalationStep(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(sa.ForeignKey("escalation_policy.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    everyone: Mapped[bool] = mapped_column(default=False, server_default=sa.false())  # routing's usual audience
    # The on-call of this schedule (webapp.models.schedule) at the moment the step is taken.
    schedule_id: Mapped[int | None] = mapped_column(sa.ForeignKey("schedule.id", ondelete="SET NULL"))
    user_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    role: Mapped[Role | None] = mapped_column(str_enum(Role))
    role_scope: Mapped[str] = mapped_column(sa.String(10), default="customer", server_default="customer")
    wait_minutes: Mapped[int] = mapped_column(default=0, server_default="0")  # before the next step
    channel: Mapped[str | None] = mapped_column(sa.String(20))  # force this channel; None: their preferences

    policy: Mapped[EscalationPolicy] = relationship(back_populates="steps")

    __table_args__ = (
        sa.Index("ix_escalation_step_policy_position", "policy_id", "position"),
        sa.CheckConstraint("wait_minutes >= 0", name="wait_nonnegative"),
    )


class EscalationRule(db.Model):
    """Incidents of this source / customer / severity and above walk this policy (empty criteria match all)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(default=0)  # lower first
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    source: Mapped[str | None] = mapped_column(sa.String(32))
    min_severity: Mapped[Severity | None] = mapped_column(str_enum(Severity))
    policy_id: Mapped[int] = mapped_column(sa.ForeignKey("escalation_policy.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    policy: Mapped[EscalationPolicy] = relationship()
