"""Events (what senders told us) and Notifications (every delivery decision, sent or not)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import EventStatus, NotificationStatus, Severity, UtcDateTime, str_enum, utcnow
from webapp.models.kinds import Channel
from webapp.validation import shown_recipient

if TYPE_CHECKING:
    from webapp.models.incident import Incident
    from webapp.models.user import User


# The unique constraint that makes a redelivery a no-op, per customer: one customer's sender cannot pass a
# dedup key that swallows another customer's alert.
EVENT_DEDUP_KEY = ("source", "customer_scope", "dedup_key", "status")


def _customer_scope(context) -> int:
    return context.get_current_parameters().get("customer_id") or 0


def dedup_identity(item) -> tuple[str, int, str, str]:
    """Where an Event, or a parsed NormalisedEvent, sits in EVENT_DEDUP_KEY: equal for a redelivery only."""
    scope = getattr(item, "customer_scope", None)
    return (item.source, item.customer_id or 0 if scope is None else scope, item.dedup_key, str(item.status))


class Event(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(sa.String(32))  # one of kinds.EVENT_SOURCES
    event_type: Mapped[str] = mapped_column(sa.String(40), default="alert")  # kinds.EVENT_TYPES
    dedup_key: Mapped[str] = mapped_column(sa.String(255))
    # The customer it came for (0: none), kept when the customer is deleted: the dedup key's namespace.
    customer_scope: Mapped[int] = mapped_column(default=_customer_scope, server_default="0")
    status: Mapped[EventStatus] = mapped_column(str_enum(EventStatus))
    severity: Mapped[Severity] = mapped_column(str_enum(Severity), default=Severity.INFO)
    title: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    labels: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # annotations, links, source extras
    job_type: Mapped[str | None] = mapped_column(sa.String(60))
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id", ondelete="SET NULL"), index=True)
    # The incident this event belongs to (alerts, and the events about them); None for reports and ticket news.
    incident_id: Mapped[int | None] = mapped_column(sa.ForeignKey("incident.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # A sender's request stores its events unrouted (None) and commits; the routing job attaches them to their
    # incidents, routes and fans them out, and sets this in the same transaction (a conditional UPDATE: once).
    # Events made inside OpsRelay are routed as they are stored (the default).
    routed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)
    # What the routing job needs besides the columns: the sender's identity of the incident (NormalisedEvent's
    # incident_key) and the source's follow-up (tickets, timeline entries: services.inbound.follow_ups).
    incident_key: Mapped[str | None] = mapped_column(sa.String(255))
    follow_up: Mapped[dict | None] = mapped_column(sa.JSON)

    notifications: Mapped[list[Notification]] = relationship(back_populates="event")
    incident: Mapped[Incident | None] = relationship()

    __table_args__ = (
        # A redelivered webhook is the same row: the database decides, not a read before a write.
        sa.UniqueConstraint(*EVENT_DEDUP_KEY),
        sa.Index("ix_event_created_at", "created_at"),
        sa.Index("ix_event_customer_created", "customer_id", "created_at"),
        sa.Index("ix_event_incident_id_id", "incident_id", "id"),
        # The recovery sweep reads only events still waiting for the routing job.
        sa.Index(
            "ix_event_unrouted",
            "created_at",
            postgresql_where=sa.text("routed_at IS NULL"),
            sqlite_where=sa.text("routed_at IS NULL"),
        ),
    )


class Notification(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="SET NULL"))
    webhook_endpoint_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True
    )  # channel=webhook: the endpoint it goes to
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    recipient: Mapped[str | None] = mapped_column(sa.String(320))  # E.164, email address or URL
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    body_html: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[NotificationStatus] = mapped_column(str_enum(NotificationStatus))
    reason: Mapped[str | None] = mapped_column(sa.String(300))  # why suppressed, deferred or failed, in words
    provider_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)  # Twilio SID, Message-ID
    simulated: Mapped[bool] = mapped_column(default=False, server_default=sa.text("false"))
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    error_code: Mapped[str | None] = mapped_column(sa.String(40))
    error_message: Mapped[str | None] = mapped_column(sa.String(1000))
    sms_encoding: Mapped[str | None] = mapped_column(sa.String(8))  # GSM-7 or UCS-2
    sms_segments: Mapped[int | None]
    sms_country: Mapped[str | None] = mapped_column(sa.String(8))  # ISO code of the number, set once sent
    sms_cost_micros: Mapped[int | None] = mapped_column(sa.BigInteger)  # segments x price, set once really sent
    deliver_after: Mapped[datetime | None] = mapped_column(UtcDateTime)  # deferred until
    # Why a row was held (quiet_hours, aggregation, hourly_cap), or "digest" for the message that carries them.
    hold: Mapped[str | None] = mapped_column(sa.String(20))
    digest_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("notification.id", ondelete="SET NULL"), index=True
    )  # the digest that delivered this held row
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The claim is a lease: the worker sending the row renews it; once it lapses the recovery sweep re-sends.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(120))  # host:pid of the worker holding it
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Every attempt, oldest first: {"attempt", "at", "outcome", "provider_id", "by", "note"} (the delivery log).
    attempt_log: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # web channel: when the user read it
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    event: Mapped[Event | None] = relationship(back_populates="notifications")
    user: Mapped[User | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("event_id", "user_id", "channel"),
        sa.UniqueConstraint("event_id", "webhook_endpoint_id"),
        sa.Index("ix_notification_created_at", "created_at"),
        sa.Index("ix_notification_status_created", "status", "created_at"),
        sa.Index("ix_notification_user_created", "user_id", "created_at"),
        sa.Index("ix_notification_customer_created", "customer_id", "created_at"),
        sa.Index("ix_notification_customer_sent", "customer_id", "sent_at"),  # a month's SMS spend
        # The delivery log pages by key (newest id first), filtered by status, channel or customer.
        sa.Index("ix_notification_status_id", "status", "id"),
        sa.Index("ix_notification_channel_id", "channel", "id"),
        sa.Index("ix_notification_customer_id_id", "customer_id", "id"),
        # The recovery sweep looks only at rows still in flight.
        sa.Index(
            "ix_notification_in_flight",
            "status",
            "updated_at",
            postgresql_where=sa.text("status IN ('pending', 'queued', 'sending', 'deferred')"),
            sqlite_where=sa.text("status IN ('pending', 'queued', 'sending', 'deferred')"),
        ),
        # The storm guard: a person's latest messages on one channel that count (neither held nor suppressed).
        sa.Index(
            "ix_notification_storm",
            "user_id",
            "channel",
            "created_at",
            postgresql_where=sa.text("status NOT IN ('deferred', 'suppressed')"),
            sqlite_where=sa.text("status NOT IN ('deferred', 'suppressed')"),
        ),
        # The release job reads only held rows that are due.
        sa.Index(
            "ix_notification_deferred_due",
            "deliver_after",
            postgresql_where=sa.text("status = 'deferred'"),
            sqlite_where=sa.text("status = 'deferred'"),
        ),
        # The inbox badge: unread web notifications of one user.
        sa.Index(
            "ix_notification_web_unread",
            "user_id",
            postgresql_where=sa.text("channel = 'web' AND read_at IS NULL"),
            sqlite_where=sa.text("channel = 'web' AND read_at IS NULL"),
        ),
        sa.CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
    )

    @property
    def masked_recipient(self) -> str:
        return shown_recipient(self.channel, self.recipient) or "-"
