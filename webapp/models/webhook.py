"""API keys, outgoing webhook endpoints and their delivery attempts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UtcDateTime, utcnow
from webapp.models.kinds import WEBHOOK_EVENTS, WEBHOOK_SOURCE_KINDS


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
    # networks (CIDR) the key is accepted from; empty: anywhere (webapp.ip_allowlist)
    allowed_ips: Mapped[list] = mapped_column(sa.JSON, default=list, server_default="[]")


class WebhookEndpoint(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    url: Mapped[str] = mapped_column(sa.String(2000))
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)  # Fernet token; never rendered back
    event_types: Mapped[list] = mapped_column(sa.JSON, default=list)  # WEBHOOK_EVENTS names; empty: all of them
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused_reason: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    deliveries: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="endpoint", cascade="all, delete-orphan", order_by="WebhookDelivery.id.desc()"
    )

    @property
    def never_sent(self) -> list[str]:
        """The names in the filter that OpsRelay never sends (kept from an older vocabulary): they match nothing."""
        return [name for name in self.event_types or [] if name not in WEBHOOK_EVENTS]

    @property
    def receives(self) -> list[str] | None:
        """The event names this endpoint is sent, in the registry's order; None: every one."""
        if not self.event_types:
            return None
        return [name for name in WEBHOOK_EVENTS.names if name in self.event_types]


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
    kind: Mapped[str] = mapped_column(sa.String(20))  # a WEBHOOK_SOURCE_KINDS name
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    secret_encrypted: Mapped[str | None] = mapped_column(sa.Text)  # Fernet token; never rendered back
    create_tickets: Mapped[bool] = mapped_column(default=False, server_default=sa.text("false"))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.text("true"))
    # networks (CIDR) its webhooks are accepted from; empty: anywhere (webapp.ip_allowlist)
    allowed_ips: Mapped[list] = mapped_column(sa.JSON, default=list, server_default="[]")
    last_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.Index("ix_webhook_source_kind_active", "kind", "is_active"),
        sa.CheckConstraint(sa.column("kind").in_(WEBHOOK_SOURCE_KINDS.names), name="kind_known"),
    )

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)
