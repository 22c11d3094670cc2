"""A customer's business hours and holidays: the calendar SLA clocks run on when a policy says so."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UtcDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.customer import Customer


class BusinessCalendar(db.Model):
    """Working days (0 = Monday) and hours, in the calendar's own time zone; one per customer."""

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), unique=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    working_days: Mapped[list] = mapped_column(sa.JSON, default=lambda: [0, 1, 2, 3, 4])
    start_minute: Mapped[int] = mapped_column(default=9 * 60)  # minutes after local midnight
    end_minute: Mapped[int] = mapped_column(default=17 * 60)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="business_calendar")

    __table_args__ = (
        sa.CheckConstraint("start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute", name="hours"),
    )


class Holiday(db.Model):
    """A day off in the customer's calendar: the business clock does not run on it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(sa.Date)
    name: Mapped[str] = mapped_column(sa.String(120), default="Holiday")

    customer: Mapped[Customer] = relationship(back_populates="holidays")

    __table_args__ = (sa.UniqueConstraint("customer_id", "day"),)
