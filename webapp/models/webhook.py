"""API keys, outgoing webhook endpoints and their delivery attempts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UtcDateTime, utcnow


class ApiKey(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    prefix: Mapped[str] = mapped_column(sa.String(16), index=True)  # shown in lists; the rest is never stored
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 hex of the whole key
    scopes: Mapped[list] = mapped_column(sa.JSON, default=lambda: ["read"])
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookEndpoint(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    url: Mapped[str] = mapped_column(sa.String(2000))
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)  # Fernet token; never rendered back
    event_types: Mapped[list] = mapped_column(sa.JSON, default=list)  # empty: every event type
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused_reason: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    deliveries: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="endpoint", cascade="all, delete-orphan", order_by="WebhookDelivery.id.desc()"
    )


class WebhookDelivery(db.Model):
    """One attempt to POST an event to an endpoint."""

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("event.id", ondelete="SET NULL"), index=True)
    event_type: Mapped[str] = mapped_column(sa.String(40))
    attempt: Mapped[int] = mapped_column(default=1)
    success: Mapped[bool] = mapped_column(default=False)
    status_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    response_excerpt: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    endpoint: Mapped[WebhookEndpoint] = relationship(back_populates="deliveries")

    __table_args__ = (sa.Index("ix_webhook_delivery_endpoint_created", "endpoint_id", "created_at"),)


class WebhookSource(db.Model):
    """An incoming sender (PagerDuty, GitHub, a generic automation system) with its own secret and customer."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)  # also ?source=<name> on the webhook URL
    kind: Mapped[str] = mapped_column(sa.String(20))  # pagerduty, github, generic
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    secret_encrypted: Mapped[str | None] = mapped_column(sa.Text)  # Fernet token; never rendered back
    create_tickets: Mapped[bool] = mapped_column(default=False, server_default=sa.text("false"))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    last_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.Index("ix_webhook_source_kind_active", "kind", "is_active"),
        sa.CheckConstraint("kind IN ('pagerduty', 'github', 'generic')", name="kind_known"),
    )

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)
