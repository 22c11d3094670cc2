"""Tickets with SLA deadlines and their timeline."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import Priority, TicketStatus, UtcDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from webapp.models.customer import Customer
    from webapp.models.user import User

OPEN_FOR_SLA = sa.text("status = 'open'")


class Ticket(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customer.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    priority: Mapped[Priority] = mapped_column(str_enum(Priority), default=Priority.NORMAL)
    status: Mapped[TicketStatus] = mapped_column(str_enum(TicketStatus), default=TicketStatus.OPEN)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused_seconds: Mapped[int] = mapped_column(default=0, server_default="0")  # business seconds the clock stood
    first_response_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalation_level: Mapped[int] = mapped_column(default=0, server_default="0")
    next_escalation_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="tickets")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])
    timeline: Mapped[list[TimelineEntry]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="TimelineEntry.id"
    )

    __table_args__ = (
        sa.Index("ix_ticket_customer_status_created", "customer_id", "status", "created_at"),
        sa.Index("ix_ticket_created_at", "created_at"),
        sa.Index("ix_ticket_customer_id_id", "customer_id", "id"),  # the tickets list, by key within customers
        # The SLA sweep reads only what is due: its cost follows due tickets, not the table.
        sa.Index(
            "ix_ticket_sla_warn",
            "warn_at",
            postgresql_where=sa.text("status = 'open' AND warned_at IS NULL"),
            sqlite_where=sa.text("status = 'open' AND warned_at IS NULL"),
        ),
        sa.Index(
            "ix_ticket_sla_due",
            "due_at",
            postgresql_where=sa.text("status = 'open' AND breached_at IS NULL"),
            sqlite_where=sa.text("status = 'open' AND breached_at IS NULL"),
        ),
        sa.Index(
            "ix_ticket_escalation",
            "next_escalation_at",
            postgresql_where=sa.text("next_escalation_at IS NOT NULL AND acknowledged_at IS NULL"),
            sqlite_where=sa.text("next_escalation_at IS NOT NULL AND acknowledged_at IS NULL"),
        ),
        sa.CheckConstraint("paused_seconds >= 0", name="paused_nonnegative"),
    )

    @property
    def key(self) -> str:
        return f"OPS-{self.id}"


class TimelineEntry(db.Model):
    """What happened to a ticket: comments, status and deadline changes, notifications, linked PRs."""

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))  # comment, status, deadline, notification, pull_request
    body: Mapped[str] = mapped_column(sa.Text, default="")
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="timeline")
