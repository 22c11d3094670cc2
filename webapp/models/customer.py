"""Customers (tenants), their membership, SMTP configs and SLA policies."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import Priority, SmtpSecurity, UtcDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from webapp.models.event import Notification
    from webapp.models.sla import BusinessCalendar, Holiday
    from webapp.models.ticket import Ticket
    from webapp.models.user import User

user_customer = sa.Table(
    "user_customer",
    db.metadata,
    sa.Column("user_id", sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("customer_id", sa.ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Customer(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    # Once this month's SMS spend reaches it, non-critical SMS go by email (webapp.services.delivery.sms_spend);
    # millionths of SMS_CURRENCY, None: no budget.
    sms_budget_micros: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    users: Mapped[list[User]] = relationship(secondary=user_customer, back_populates="customers")
    smtp_configs: Mapped[list[SmtpConfig]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    sla_policies: Mapped[list[SlaPolicy]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    tickets: Mapped[list[Ticket]] = relationship(back_populates="customer")
    business_calendar: Mapped[BusinessCalendar | None] = relationship(
        back_populates="customer", cascade="all, delete-orphan", uselist=False
    )
    holidays: Mapped[list[Holiday]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Holiday.day"
    )

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.name!r}>"


class SmtpConfig(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="Default")
    host: Mapped[str] = mapped_column(sa.String(255))
    port: Mapped[int] = mapped_column(default=587)
    security: Mapped[SmtpSecurity] = mapped_column(str_enum(SmtpSecurity), default=SmtpSecurity.STARTTLS)
    username: Mapped[str | None] = mapped_column(sa.String(255))
    password_encrypted: Mapped[str | None] = mapped_column(sa.Text)  # Fernet token; never rendered back
    from_email: Mapped[str] = mapped_column(sa.String(254))
    from_name: Mapped[str | None] = mapped_column(sa.String(120))
    reply_to: Mapped[str | None] = mapped_column(sa.String(254))
    timeout_seconds: Mapped[int] = mapped_column(default=30, server_default="30")
    enabled: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    last_test_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_test_ok: Mapped[bool | None]
    last_test_message: Mapped[str | None] = mapped_column(sa.String(500))
    # The last "Send test email": its Notification row carries the outcome (sent, or the server's error).
    test_notification_id: Mapped[int | None] = mapped_column(sa.ForeignKey("notification.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="smtp_configs")
    test_notification: Mapped[Notification | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint("port BETWEEN 1 AND 65535", name="port_range"),
        sa.CheckConstraint("timeout_seconds BETWEEN 1 AND 300", name="timeout_range"),
    )


class SlaPolicy(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"))
    priority: Mapped[Priority] = mapped_column(str_enum(Priority))
    resolution_minutes: Mapped[int]
    first_response_minutes: Mapped[int | None]
    warning_minutes: Mapped[int] = mapped_column(default=60, server_default="60")
    business_hours_only: Mapped[bool] = mapped_column(default=False, server_default=sa.text("false"))
    escalation_minutes: Mapped[int | None]  # delay before the next level hears of an unacknowledged breach
    escalation_interval_minutes: Mapped[int | None]  # then again every ... (None: the delay again)
    escalation_limit: Mapped[int] = mapped_column(default=2, server_default="2")  # levels notified at most
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="sla_policies")

    __table_args__ = (
        sa.UniqueConstraint("customer_id", "priority"),
        sa.CheckConstraint("resolution_minutes > 0", name="resolution_positive"),
        sa.CheckConstraint("warning_minutes >= 0", name="warning_nonnegative"),
        sa.CheckConstraint("escalation_limit BETWEEN 0 AND 20", name="escalation_limit_range"),
    )
