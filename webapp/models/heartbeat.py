"""Heartbeats: a check-in URL per customer that something (a cron job, a backup script) must call every
`interval_seconds`; `grace_seconds` later than that, a missed check-in opens an alert."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import Severity, UtcDateTime, str_enum, utcnow


class Heartbeat(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(80))  # the URL's <name>: unique per customer
    interval_seconds: Mapped[int] = mapped_column()
    grace_seconds: Mapped[int] = mapped_column()
    severity: Mapped[Severity] = mapped_column(str_enum(Severity), default=Severity.CRITICAL)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 of the per-heartbeat token
    token_prefix: Mapped[str] = mapped_column(sa.String(16))  # shown in lists; the rest is never stored
    paused: Mapped[bool] = mapped_column(default=False, server_default=sa.text("false"))
    last_checkin_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When the next check-in is late: last check-in (or creation, or resume) + interval + grace.
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set when the sweep found it late (and opened the alert); cleared by the check-in that resolves it.
    missed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("customer_id", "name"),
        # The sweep reads only the watched heartbeats that are due: its cost follows them, not the table.
        sa.Index(
            "ix_heartbeat_watch",
            "due_at",
            postgresql_where=sa.text("paused = false AND missed_at IS NULL"),
            sqlite_where=sa.text("paused = 0 AND missed_at IS NULL"),
        ),
        sa.CheckConstraint("interval_seconds > 0 AND grace_seconds >= 0", name="timing_positive"),
    )

    @property
    def state(self) -> str:
        """paused, late (an alert is open), waiting (no check-in yet) or up."""
        if self.paused:
            return "paused"
        if self.missed_at is not None:
            return "late"
        return "waiting" if self.last_checkin_at is None else "up"

    def next_due(self, after: datetime) -> datetime:
        return after + timedelta(seconds=self.interval_seconds + self.grace_seconds)
