"""Test messages: an SMS or a phone call to a number, an email to an address or a webhook to an endpoint, as
Notification rows with no event.

They go through the same outbox and delivery path as real notifications, so what the page shows
(queued → sent → delivered, or failed with the provider's message) is what a real one would do. Each row
is created `queued` and handed to the outbox: its job reaches the queue when the caller commits.
"""

from __future__ import annotations

import json
from datetime import datetime

from webapp import outbox
from webapp.channels import sms_text
from webapp.extensions import db
from webapp.models import Channel, Customer, Notification, NotificationStatus, SmtpConfig, User, WebhookEndpoint, utcnow
from webapp.services import audit
from webapp.validation import mask_phone

DEFAULT_SMS = "OpsRelay test message: if you can read this, SMS delivery to this number works."
DEFAULT_CALL = "This is a test call from OpsRelay. If you can hear this, phone calls to this number work."
EMAIL_SUBJECT = "OpsRelay test email"


def _row(*, customer_id: int | None, actor: User | None, channel: Channel, to: str, body: str, now: datetime, **fields):
    notification = Notification(
        customer_id=customer_id,
        user_id=actor.id if actor else None,
        event_id=None,
        channel=channel,
        recipient=to,
        body=body,
        status=NotificationStatus.QUEUED,
        queued_at=now,
        created_at=now,
        updated_at=now,
        **fields,
    )
    db.session.add(notification)
    db.session.flush()
    outbox.deliver([notification.id])
    return notification


def sms(
    *, customer: Customer, to: str, actor: User, message: str | None = None, now: datetime | None = None
) -> Notification:
    """A test SMS to an E.164 number (validated by the caller with validation.to_e164)."""
    body = (message or "").strip() or DEFAULT_SMS
    length = sms_text.measure(body)
    notification = _row(
        customer_id=customer.id,
        actor=actor,
        channel=Channel.SMS,
        to=to,
        body=body,
        now=now or utcnow(),
        sms_encoding=length.encoding,
        sms_segments=length.segments,
    )
    audit.record(actor=actor, action="test.sms", target=notification, summary=f"test SMS to {mask_phone(to)}")
    return notification


def call(
    *, customer: Customer, to: str, actor: User, message: str | None = None, now: datetime | None = None
) -> Notification:
    """A test phone call to an E.164 number: the message is read out, then the usual prompt (a digit acknowledges
    nothing: there is no incident)."""
    body = " ".join((message or "").split()) or DEFAULT_CALL
    notification = _row(
        customer_id=customer.id, actor=actor, channel=Channel.VOICE, to=to, body=body, now=now or utcnow()
    )
    audit.record(actor=actor, action="test.call", target=notification, summary=f"test call to {mask_phone(to)}")
    return notification


def email(
    *,
    customer: Customer,
    to: str,
    actor: User | None,
    message: str | None = None,
    smtp_config: SmtpConfig | None = None,
    now: datetime | None = None,
) -> Notification:
    """A test email to an address; with `smtp_config`, remembered as that config's last test."""
    now = now or utcnow()
    via = (
        f" through the SMTP settings “{smtp_config.name}” ({smtp_config.host}:{smtp_config.port})"
        if smtp_config
        else ""
    )
    body = (message or "").strip() or (
        f"This is a test email from OpsRelay for {customer.name}{via}, sent {now:%Y-%m-%d %H:%M:%S} UTC.\n"
        "If you can read it, email delivery works."
    )
    notification = _row(
        customer_id=customer.id, actor=actor, channel=Channel.EMAIL, to=to, body=body, now=now, subject=EMAIL_SUBJECT
    )
    if smtp_config is not None:
        smtp_config.last_test_at = now
        smtp_config.test_notification_id = notification.id
    audit.record(actor=actor, action="test.email", target=notification, summary=f"test email to {to}{via}")
    return notification


def webhook(*, endpoint: WebhookEndpoint, actor: User, now: datetime | None = None) -> Notification:
    """A signed `test` delivery to an outgoing webhook endpoint, whatever event types it subscribes to."""
    now = now or utcnow()
    body = json.dumps(
        {
            "event": "test",
            "sent_at": now.isoformat(),
            "data": {"endpoint": endpoint.name, "message": "OpsRelay test delivery: your receiver answered it."},
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    notification = _row(
        customer_id=endpoint.customer_id,
        actor=actor,
        channel=Channel.WEBHOOK,
        to=endpoint.url[:320],
        body=body,
        now=now,
        webhook_endpoint_id=endpoint.id,
        subject="test",
    )
    audit.record(actor=actor, action="test.webhook", target=notification, summary=f"test delivery to {endpoint.name!r}")
    return notification
