"""Users, their phone numbers and notification preferences."""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db
from webapp.models.base import Role, Severity, UtcDateTime, str_enum, utcnow
from webapp.models.customer import user_customer
from webapp.models.kinds import DEFAULT_CHANNELS
from webapp.validation import mask_phone

# Storm guard defaults (a user without a preference gets them too). SMS: 5 in 10 minutes, the first five of a
# storm ring at once and the rest become one summary. Email: 10 in the same window, twice the SMS: an email
# interrupts nobody and carries the detail people triage from, yet ten still fit on one inbox screen, so a
# storm does not bury the rest of the mailbox.
STORM_SMS_LIMIT = 5
STORM_EMAIL_LIMIT = 10
STORM_WINDOW_MINUTES = 10

if TYPE_CHECKING:
    from webapp.models.customer import Customer


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.VIEWER)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Part of every session and remember-me cookie (get_id); raising it ends them all (services.people.users).
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")

    customers: Mapped[list[Customer]] = relationship(secondary=user_customer, back_populates="users")
    phone_numbers: Mapped[list[PhoneNumber]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="PhoneNumber.id"
    )
    preferences: Mapped[list[NotificationPreference]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    __table_args__ = (sa.Index("ix_user_role_active", "role", "is_active"),)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        """What the session and the remember-me cookie hold: the id and the session version."""
        return f"{self.id}.{self.session_version or 1}"

    def has_role(self, role: Role) -> bool:
        return self.role.rank >= role.rank

    @property
    def primary_phone(self) -> PhoneNumber | None:
        return next((p for p in self.phone_numbers if p.is_primary), None)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class PhoneNumber(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(sa.String(20), index=True)  # E.164
    label: Mapped[str] = mapped_column(sa.String(40), default="Mobile")
    is_primary: Mapped[bool] = mapped_column(default=False, server_default=sa.text("false"))
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    opted_out: Mapped[bool] = mapped_column(default=False, server_default=sa.text("false"))
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    opted_out_via: Mapped[str | None] = mapped_column(sa.String(60))
    # SMS verification: only a hash of the code is kept, with its expiry and the wrong tries so far.
    verify_code_hash: Mapped[str | None] = mapped_column(sa.String(128))
    verify_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verify_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # The live code, encrypted, for the SMS alone: the notification row never holds it (see services.people.phones).
    verify_code_encrypted: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="phone_numbers")

    __table_args__ = (
        sa.UniqueConstraint("user_id", "number"),
        sa.CheckConstraint("number LIKE '+%'", name="e164"),
        sa.Index(
            "uq_phone_number_one_primary",
            "user_id",
            unique=True,
            postgresql_where=sa.text("is_primary"),
            sqlite_where=sa.text("is_primary"),
        ),
    )

    @property
    def masked(self) -> str:
        """The number as logs may show it: last four digits only."""
        return mask_phone(self.number)


class NotificationPreference(db.Model):
    """One user's rules, for one customer or (customer_id NULL) for all of theirs."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    enabled_channels: Mapped[list] = mapped_column(sa.JSON, default=lambda: [str(c) for c in DEFAULT_CHANNELS])
    min_severity_web: Mapped[Severity] = mapped_column(
        str_enum(Severity, name="min_severity_web"), default=Severity.LOW
    )
    min_severity_email: Mapped[Severity] = mapped_column(
        str_enum(Severity, name="min_severity_email"), default=Severity.HIGH
    )
    min_severity_sms: Mapped[Severity] = mapped_column(
        str_enum(Severity, name="min_severity_sms"), default=Severity.CRITICAL
    )
    min_severity_voice: Mapped[Severity] = mapped_column(
        str_enum(Severity, name="min_severity_voice"), default=Severity.CRITICAL, server_default="critical"
    )
    event_types: Mapped[list] = mapped_column(sa.JSON, default=list)  # empty: all event types
    job_types: Mapped[list] = mapped_column(sa.JSON, default=list)  # empty: all job types
    override_email: Mapped[str | None] = mapped_column(sa.String(254))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    quiet_hours_start: Mapped[time | None] = mapped_column(sa.Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(sa.Time)
    critical_bypasses_quiet_hours: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    max_notifications_per_hour: Mapped[int | None]
    enable_aggregation: Mapped[bool] = mapped_column(default=False, server_default=sa.text("false"))
    aggregation_window_seconds: Mapped[int] = mapped_column(default=120, server_default="120")
    # Tell me when an alert I was notified of resolves (on the channels that notified me).
    notify_on_resolve: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    # The storm guard (on by default): past this many SMS / emails in storm_window_minutes, the rest wait for
    # one summary at the end of the window (webapp.services.routing.digest).
    storm_guard: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    storm_sms_limit: Mapped[int] = mapped_column(default=STORM_SMS_LIMIT, server_default=str(STORM_SMS_LIMIT))
    storm_email_limit: Mapped[int] = mapped_column(default=STORM_EMAIL_LIMIT, server_default=str(STORM_EMAIL_LIMIT))
    storm_window_minutes: Mapped[int] = mapped_column(
        default=STORM_WINDOW_MINUTES, server_default=str(STORM_WINDOW_MINUTES)
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="preferences")

    __table_args__ = (
        sa.UniqueConstraint("user_id", "customer_id"),
        sa.Index(
            "uq_notification_preference_user_default",
            "user_id",
            unique=True,
            postgresql_where=sa.text("customer_id IS NULL"),
            sqlite_where=sa.text("customer_id IS NULL"),
        ),
        sa.CheckConstraint("max_notifications_per_hour IS NULL OR max_notifications_per_hour > 0", name="cap_positive"),
        sa.CheckConstraint("aggregation_window_seconds > 0", name="window_positive"),
        sa.CheckConstraint(
            "storm_sms_limit > 0 AND storm_email_limit > 0 AND storm_window_minutes > 0", name="storm_positive"
        ),
    )
