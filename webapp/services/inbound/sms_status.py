"""What Twilio reports about an SMS after it left: sent, delivered, undelivered or failed (its status
callbacks). A row only ever moves forward (a late "sent" never undoes "delivered"), and Twilio's error 21610
(the recipient unsubscribed) opts the number out for every user who has it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from webapp import metrics
from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, utcnow
from webapp.services.inbound import sms_replies

S = NotificationStatus
UNSUBSCRIBED = "21610"
# Twilio's MessageStatus -> ours, and the statuses a row may still move from (never backwards).
MOVES = {
    "sent": (S.SENT, (S.QUEUED, S.SENDING)),
    "delivered": (S.DELIVERED, (S.QUEUED, S.SENDING, S.SENT)),
    "undelivered": (S.FAILED, (S.QUEUED, S.SENDING, S.SENT)),
    "failed": (S.FAILED, (S.QUEUED, S.SENDING, S.SENT)),
}


def record(sid: str, reported: str, *, error_code: str | None = None, now: datetime | None = None) -> bool:
    """Move the SMS with provider id `sid` to what Twilio reported; False if nothing moved (unknown sid,
    a status we do not record, or one the row is already past). Flushes, never commits."""
    move = MOVES.get(reported.lower())
    if not sid or move is None:
        return False
    target, movable = move
    now = now or utcnow()
    error_message = f"Twilio reported the SMS {reported.lower()}" + (f" (error {error_code})" if error_code else "")
    recipient = advance(sid, Channel.SMS, target, movable, error_code=error_code, error_message=error_message, now=now)
    if recipient and error_code == UNSUBSCRIBED:
        sms_replies.opt_out(recipient, via="Twilio error 21610 (recipient unsubscribed)", now=now)
    return recipient is not None


def advance(
    sid: str,
    channel: Channel,
    target: NotificationStatus,
    movable: tuple[NotificationStatus, ...],
    *,
    error_code: str | None,
    error_message: str,
    now: datetime,
    reason: str | None = None,
) -> str | None:
    """Move the `channel` row with provider id `sid` to `target` if it is still in one of `movable` (never
    backwards), stamping the time of the move; its recipient, or None if nothing moved. SMS and call status
    callbacks both land here."""
    values: dict = {"status": target, "updated_at": now}
    if reason is not None:
        values["reason"] = reason[:300]
    if target == S.DELIVERED:
        values["delivered_at"] = now
    elif target == S.FAILED:
        values.update(failed_at=now, error_code=error_code, error_message=error_message[:1000])
    elif target == S.SENT:
        values["sent_at"] = now
    moved = db.session.execute(
        update(Notification)
        .where(Notification.provider_id == sid, Notification.channel == channel, Notification.status.in_(movable))
        .values(**values)
        .returning(Notification.recipient, Notification.sent_at)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None:
        return None
    recipient, sent_at = moved
    if target != S.SENT:
        metrics.notifications.labels(channel=channel.value, status=target.value).inc()
        if target == S.DELIVERED and sent_at is not None:
            metrics.confirm_latency.labels(channel=channel.value).observe(metrics.since(sent_at, now))
    return recipient or ""
