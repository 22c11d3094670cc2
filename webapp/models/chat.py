"""A customer's chat channels: Slack and Microsoft Teams incoming webhooks that incidents are posted to."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import Severity, UtcDateTime, str_enum, utcnow
from webapp.models.kinds import CHAT_CHANNELS


class ChatChannel(db.Model):
    """One incoming webhook of a customer's Slack or Teams channel. The URL is the credential (whoever holds it
    posts into the channel): stored encrypted, never shown back."""

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # a CHAT_CHANNELS value
    name: Mapped[str] = mapped_column(sa.String(120))
    webhook_url_encrypted: Mapped[str | None] = mapped_column(sa.Text)  # Fernet token; never rendered back
    min_severity: Mapped[Severity] = mapped_column(str_enum(Severity, name="chat_min_severity"), default=Severity.HIGH)
    enabled: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (sa.CheckConstraint(sa.column("kind").in_([str(c) for c in CHAT_CHANNELS]), name="kind_known"),)
