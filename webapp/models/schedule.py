"""On-call schedules: rotation layers of people, plus overrides ("Alice covers Bob Tuesday 20:00-08:00").

Nothing here is materialised per shift: who is on call at an instant is arithmetic from a layer's anchor
(webapp.services.oncall), so the cost of asking does not grow with a schedule's age.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UtcDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from webapp.models.customer import Customer
    from webapp.models.user import User


class Rotation(enum.StrEnum):
    """How often a layer hands off: daily and weekly at a local wall-clock time (09:00 stays 09:00 across DST),
    custom every `rotation_hours` of absolute time."""

    DAILY = "daily"
    WEEKLY = "weekly"
    CUSTOM = "custom"


class Schedule(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL: the operations team's own schedule (seen and changed by admins only, as every customer-less row).
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC")  # hand-offs and restrictions are local
    # The next instant the on-call person may change: the hand-off sweep claims it with a conditional UPDATE,
    # so the incoming person is told once even with several schedulers.
    next_notice_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer | None] = relationship()
    layers: Mapped[list[ScheduleLayer]] = relationship(
        back_populates="schedule", cascade="all, delete-orphan", order_by="ScheduleLayer.position"
    )

    __table_args__ = (sa.Index("ix_schedule_next_notice_at", "next_notice_at"),)


class ScheduleLayer(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(sa.ForeignKey("schedule.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)  # higher layers win wherever they have someone
    name: Mapped[str] = mapped_column(sa.String(80))
    rotation: Mapped[Rotation] = mapped_column(str_enum(Rotation), default=Rotation.WEEKLY)
    rotation_hours: Mapped[int] = mapped_column(default=168)  # used by custom rotations (daily 24, weekly 168)
    handoff_time: Mapped[time] = mapped_column(sa.Time, default=time(9, 0))  # local, in the schedule's zone
    # The anchor: the first hand-off is starts_on at handoff_time (local); the layer is empty before it.
    # A weekly layer hands off on starts_on's weekday.
    starts_on: Mapped[date] = mapped_column(sa.Date)
    member_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)  # user ids, in rotation order
    # [{"days": [0..6] (Monday 0), "from": "HH:MM", "to": "HH:MM"}], local; to <= from runs past midnight.
    # Empty: the layer covers every hour.
    restrictions: Mapped[list[dict]] = mapped_column(sa.JSON, default=list)

    schedule: Mapped[Schedule] = relationship(back_populates="layers")

    __table_args__ = (sa.CheckConstraint("rotation_hours > 0", name="rotation_hours_positive"),)


class ScheduleOverride(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(sa.ForeignKey("schedule.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    __table_args__ = (
        # "Which override covers t": ends_at > t reads only the overrides not yet over, never the history.
        sa.Index("ix_schedule_override_schedule_ends", "schedule_id", "ends_at"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )


class ScheduleFeed(db.Model):
    """A person's iCal feed address: the token is a secret (it reads their shifts without a login), so only its
    sha256 is kept; regenerating replaces it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
