"""Message templates per event type and channel, with per-customer overrides."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UtcDateTime, str_enum, utcnow
from webapp.models.kinds import Channel


class MessageTemplate(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(80))  # e.g. system_alert
    event_type: Mapped[str] = mapped_column(sa.String(40))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("customer_id", "event_type", "channel"),
        sa.Index(
            "uq_message_template_default",
            "event_type",
            "channel",
            unique=True,
            postgresql_where=sa.text("customer_id IS NULL"),
            sqlite_where=sa.text("customer_id IS NULL"),
        ),
    )
