"""One claimed Notification through its channel: build what goes out, call the channel, say what happened.

`send(notification)` returns the channel's SendResult, or raises TransientError / PermanentError
(from webapp.channels.base) or Suppress (the row must not go out: opted out, acknowledged, paused).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import textwrap
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import inspect, update

from webapp.channels import sms_text
from webapp.channels.base import PermanentError, SendResult
from webapp.channels.email_smtp import Email, SmtpEmail, SmtpSettings
from webapp.channels.webhook_http import HttpWebhook
from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    EventStatus,
    Incident,
    IncidentState,
    Notification,
    NotificationStatus,
    PhoneNumber,
    SmtpConfig,
    Ticket,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from webapp.security import decrypt_secret
from webapp.services.delivery import calls, chat
from webapp.services.inbound import acks, sms_replies
from webapp.services.messages import templates
from webapp.services.people import phones
from webapp.validation import mask_phone

log = logging.getLogger(__name__)

STATUS_CALLBACK_PATH = "/api/v1/webhooks/twilio/status"
PHONE_CHANNELS = (Channel.SMS, Channel.VOICE)  # a number's opt-out (STOP) holds for both
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


class Suppress(Exception):
    """The notification must not go out; the message says why (shown in the delivery log)."""


_CONTEXT = "opsrelay_send_context"


class Context(NamedTuple):
    """What a send needs besides its row: the event, its incident (acknowledged or resolved meanwhile?) and
    whether the phone number opted out."""

    event: Event | None
    incident: Incident | None
    opted_out: bool


def remember_context(notification: Notification, context: Context) -> None:
    """What the claim read for the send (PostgreSQL: the claim's own statement read it), so that send() touches
    no transaction and the outcome is one UPDATE. Only a page's incident, triggered at the claim, is looked at
    again when the send starts (_acknowledged_since_claim): an acknowledgement while the row waited for a send
    thread stops it, as one before the claim does."""
    inspect(notification).info[_CONTEXT] = context


def claimed_rows(notification: Notification) -> tuple:
    """The event and incident the claim read for this row (those it read)."""
    remembered = inspect(notification).info.get(_CONTEXT)
    return tuple(x for x in (remembered.event, remembered.incident) if x is not None) if remembered else ()


def adopt(notification: Notification) -> None:
    """Add a row claimed on another thread to this thread's session, with what its claim read (the event and
    incident as copies in this session: the rows of one batch may share them)."""
    state = inspect(notification)
    db.session.add(notification)
    remembered = state.info.get(_CONTEXT)
    if remembered is not None:
        event, incident = (db.session.merge(x, load=False) if x is not None else None for x in remembered[:2])
        state.info[_CONTEXT] = remembered._replace(event=event, incident=incident)


def _context(notification: Notification) -> Context:
    """What the claim read, or one query for it."""
    remembered = inspect(notification).info.pop(_CONTEXT, None)
    if remembered is not None:
        if _acknowledged_since_claim(remembered):
            db.session.refresh(remembered.incident)  # who acted, for the reason (the rare case: a transaction)
        return remembered
    opted_out = (
        db.select(PhoneNumber.id)
        .where(PhoneNumber.number == notification.recipient, PhoneNumber.opted_out.is_(True))
        .exists()
        if notification.channel in PHONE_CHANNELS and notification.recipient
        else sa.false()
    )
    if notification.event_id is None:
        phone = notification.channel in PHONE_CHANNELS
        return Context(None, None, bool(db.session.scalar(db.select(opted_out))) if phone else False)
    row = db.session.execute(
        db.select(Event, Incident, opted_out)
        .outerjoin(Incident, Incident.id == Event.incident_id)
        .where(Event.id == notification.event_id)
    ).one_or_none()
    return Context(row[0], row[1], bool(row[2])) if row else Context(None, None, False)


def _acknowledged_since_claim(context: Context) -> bool:
    """Did a page's incident, triggered when the row was claimed, leave that state since? One autocommit read
    on a connection of its own: the row's session stays untouched, so its outcome is still one UPDATE."""
    event, incident = context.event, context.incident
    if incident is None or incident.state != IncidentState.TRIGGERED or event.status != EventStatus.FIRING:
        return False
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        state = connection.scalar(_incident_state(), {"incident_id": incident.id})
    return state is not None and state != IncidentState.TRIGGERED


@functools.cache
def _incident_state() -> sa.Select:
    """SELECT state FROM incident WHERE id = :incident_id, built once (a statement built per page cost more
    than the read)."""
    table = Incident.__table__
    return sa.select(table.c.state).where(table.c.id == sa.bindparam("incident_id", type_=table.c.id.type))


def _stopped(event: Event | None, incident: Incident | None) -> str | None:
    """Why a page must not go out any more: its incident was acknowledged or resolved meanwhile."""
    if event is None or event.incident_id is None or event.status != EventStatus.FIRING:
        return None
    if incident is None or incident.state == IncidentState.TRIGGERED:
        return None
    if incident.state == IncidentState.ACKNOWLEDGED:
        by = incident.acknowledged_by.name if incident.acknowledged_by else incident.acknowledged_via
        return f"acknowledged by {by or 'someone'}"
    by = incident.resolved_by.name if incident.resolved_by else incident.resolved_via
    return f"resolved by {by or 'its sender'} before it went out"


def send(notification: Notification) -> SendResult:
    event, incident, opted_out = _context(notification)
    if notification.channel != Channel.WEBHOOK and (why := _stopped(event, incident)):
        raise Suppress(why)
    if notification.channel == Channel.SMS:
        return _send_sms(notification, event, opted_out=opted_out)
    if notification.channel == Channel.VOICE:
        if opted_out:  # STOP stops calls too: see services.inbound.voice_calls
            raise Suppress(f"opted out (number {mask_phone(notification.recipient)}): STOP stops calls too")
        return calls.place(notification, event)
    if notification.channel == Channel.EMAIL:
        return _send_email(notification, event)
    if notification.channel == Channel.WEBHOOK:
        return _send_webhook(notification, event)
    if notification.channel == Channel.WEB:
        return SendResult(provider_id=f"web-{notification.id}")  # in-app: shown once it is sent
    if Channel(notification.channel).chat:
        try:
            return chat.send(notification, event, backend=_webhook_backend())
        except chat.Skip as exc:
            raise Suppress(str(exc)) from None
    raise PermanentError(f"no delivery backend for the {notification.channel} channel", code="no_backend")


# --- SMS -------------------------------------------------------------------------------------


def status_callback_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"] + STATUS_CALLBACK_PATH


def sms_text_for(notification: Notification, event: Event | None) -> str:
    """The body as sent: with the ACK code of its incident or ticket, within SMS_MAX_SEGMENTS."""
    body = notification.body
    suffix = ""
    code = acks.code_for(event) if event is not None else None
    if code:  # a page about something still open; an all-clear or a notice has nothing to acknowledge
        suffix = f"\nReply ACK {code}"
        if body.endswith(suffix):  # a retry: the stored body is already the sent text
            body = body.removesuffix(suffix)
    return sms_text.shorten(body, current_app.config["SMS_MAX_SEGMENTS"], suffix=suffix)


def _send_sms(notification: Notification, event: Event | None, *, opted_out: bool) -> SendResult:
    if not notification.recipient:
        raise PermanentError("no phone number to send to", code="no_recipient")
    if opted_out:
        phone = db.session.scalars(
            db.select(PhoneNumber).where(PhoneNumber.number == notification.recipient, PhoneNumber.opted_out.is_(True))
        ).first()
        via = phone.opted_out_via if phone is not None else None
        raise Suppress(f"opted out of SMS (number {mask_phone(notification.recipient)}) via {via or 'unknown'}")
    if phones.is_verification(notification):  # the code goes to the number only, never into the row
        text = phones.verification_text(notification)
        if text is None:
            raise Suppress("the number was verified before this code could be sent")
    else:
        text = sms_text_for(notification, event)
        notification.body = text
    length = sms_text.measure(text)
    notification.sms_encoding = length.encoding
    notification.sms_segments = length.segments
    backend = current_app.extensions["opsrelay_sms"]
    try:
        return backend.send(to=notification.recipient, body=text, status_callback=status_callback_url())
    except PermanentError as exc:
        if exc.code == "21610":
            sms_replies.opt_out(notification.recipient, via="Twilio error 21610 (recipient unsubscribed)")
        raise


# --- email -----------------------------------------------------------------------------------


def smtp_settings(customer_id: int | None, *, test_notification_id: int | None = None) -> SmtpSettings:
    """The customer's enabled SMTP config (the oldest), else the app's own MAIL_* settings.

    A "Send test email" from an SMTP config's page (`test_notification_id`) goes through that config.
    """
    config = current_app.config
    smtp = None
    if test_notification_id is not None:
        smtp = db.session.scalars(
            db.select(SmtpConfig).where(SmtpConfig.test_notification_id == test_notification_id).limit(1)
        ).first()
    if smtp is None and customer_id is not None:
        smtp = db.session.scalars(
            db.select(SmtpConfig)
            .where(SmtpConfig.customer_id == customer_id, SmtpConfig.enabled.is_(True))
            .order_by(SmtpConfig.id)
            .limit(1)
        ).first()
    if smtp is not None:
        try:
            password = decrypt_secret(smtp.password_encrypted) if smtp.password_encrypted else None
        except ValueError as exc:
            raise PermanentError(f"SMTP config #{smtp.id}: {exc}", code="smtp_config") from None
        return SmtpSettings(
            host=one_line(smtp.host),
            port=smtp.port,
            security=str(smtp.security),
            username=smtp.username,
            password=password,
            from_email=smtp.from_email,
            from_name=one_line(smtp.from_name) if smtp.from_name else None,
            reply_to=smtp.reply_to,
            timeout=smtp.timeout_seconds,
            ca_file=config.get("SMTP_CA_FILE"),
            source=f"SMTP config #{smtp.id}",
        )
    security = "ssl" if config.get("MAIL_USE_SSL") else "starttls" if config.get("MAIL_USE_TLS") else "none"
    sender = config.get("MAIL_DEFAULT_SENDER") or "opsrelay@localhost"
    return SmtpSettings(
        host=config.get("MAIL_SERVER") or "localhost",
        port=int(config.get("MAIL_PORT") or 25),
        security=security,
        username=config.get("MAIL_USERNAME"),
        password=config.get("MAIL_PASSWORD"),
        from_email=sender if isinstance(sender, str) else sender[1],
        ca_file=config.get("SMTP_CA_FILE"),
        source="app MAIL_* settings",
    )


def one_line(value: str) -> str:
    """A header value from data (an alert's label, a title): CR, LF and other control characters become spaces,
    so no value can end a header, add one or make the message unbuildable."""
    return " ".join(_CONTROL.sub(" ", value).split())


def email_context(event: Event) -> dict:
    context = templates.event_context(event)
    context["event"]["job_type"] = event.job_type
    context["ticket"] = None
    if event.ticket_id:
        ticket = db.session.get(Ticket, event.ticket_id)
        if ticket is not None:
            due = ticket.due_at.strftime("%Y-%m-%d %H:%M UTC") if ticket.due_at else None
            context["ticket"] = {"key": ticket.key, "title": ticket.title, "due_at": due, "id": ticket.id}
    context["link"] = current_app.config["PUBLIC_BASE_URL"] + "/"
    return context


def render_email(notification: Notification, event: Event) -> None:
    """Fill subject, text and HTML from the event type's email template; PermanentError if it cannot."""
    template = templates.find(event.event_type, Channel.EMAIL, customer_id=event.customer_id)
    if template is None:
        if notification.body:
            return  # the row was written with its own text
        raise PermanentError(f"no email template for event type {event.event_type!r}", code="template")
    context = email_context(event)
    try:
        notification.subject = templates.render_text(template.subject or "{{ event.title }}", context)[:300]
        notification.body = templates.render_text(template.body_text, context)
        notification.body_html = templates.render_html(template.body_html, context) if template.body_html else None
    except templates.TemplateRenderError as exc:
        raise PermanentError(f"email template {template.name!r}: {exc}", code="template") from None


def _send_email(notification: Notification, event: Event | None) -> SendResult:
    if not notification.recipient:
        raise PermanentError("no email address to send to", code="no_recipient")
    if event is not None and event.source not in (acks.ACK_SOURCE, acks.RESOLVE_SOURCE) and not notification.body_html:
        render_email(notification, event)
    settings = smtp_settings(notification.customer_id, test_notification_id=None if event else notification.id)
    email = Email(
        to=one_line(notification.recipient),
        subject=one_line(notification.subject or (event.title if event else "OpsRelay notification")),
        text=notification.body,
        html=notification.body_html,
        idempotency_key=f"opsrelay-notification-{notification.id}",  # a re-send repeats the Message-ID
    )
    return _email_backend().send(settings, email)


def _email_backend() -> SmtpEmail:
    """The EMAIL_BACKEND (smtp, console or file), read when the first email goes out."""
    backend = current_app.extensions.get("opsrelay_email")
    config = current_app.config
    if backend is None or backend.backend != config["EMAIL_BACKEND"]:
        backend = SmtpEmail(config["EMAIL_BACKEND"], file_dir=config["EMAIL_FILE_DIR"])
        current_app.extensions["opsrelay_email"] = backend
    return backend


# --- outgoing webhooks -----------------------------------------------------------------------


def _webhook_backend() -> HttpWebhook:
    return current_app.extensions.setdefault(
        "opsrelay_webhook", HttpWebhook(timeout=current_app.config["WEBHOOK_TIMEOUT"])
    )


def _send_webhook(notification: Notification, event: Event | None) -> SendResult:
    endpoint = db.session.get(WebhookEndpoint, notification.webhook_endpoint_id or 0)
    if endpoint is None:
        raise PermanentError("the webhook endpoint was deleted", code="no_endpoint")
    if not endpoint.is_active:
        raise Suppress(f"webhook endpoint {endpoint.name!r} is disabled")
    if endpoint.paused_at is not None:
        raise Suppress(f"webhook endpoint {endpoint.name!r} is paused: {endpoint.paused_reason}")
    try:
        secret = decrypt_secret(endpoint.secret_encrypted)
    except ValueError as exc:
        raise PermanentError(f"webhook endpoint {endpoint.name!r}: {exc}", code="secret") from None
    event_name = json.loads(notification.body).get("event", "event.created") if notification.body else "event.created"
    attempt = _webhook_backend().post(
        url=endpoint.url,
        secret=secret,
        body=notification.body.encode(),
        event_name=event_name,
        delivery_id=str(notification.id),
    )
    record = WebhookDelivery(
        endpoint_id=endpoint.id,
        event_id=notification.event_id,
        event_type=event_name,
        attempt=notification.attempts,
        success=attempt.ok,
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        error=attempt.error,
        response_excerpt=attempt.response_excerpt,
        created_at=utcnow(),
    )
    db.session.add(record)
    if attempt.ok:
        if endpoint.consecutive_failures:
            endpoint.consecutive_failures = 0
        db.session.flush()
        return SendResult(provider_id=f"webhook-delivery-{record.id}")
    message = f"{endpoint.url}: {attempt.error}"
    failures = db.session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id)
        .values(consecutive_failures=WebhookEndpoint.consecutive_failures + 1)
        .returning(WebhookEndpoint.consecutive_failures)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    threshold = current_app.config["WEBHOOK_PAUSE_AFTER_FAILURES"]
    if failures >= threshold:
        pause_endpoint(endpoint, f"paused after {failures} consecutive failed deliveries; last: {attempt.error}")
        raise PermanentError(f"{message} (endpoint paused after {failures} consecutive failures)", code="paused")
    raise attempt.failure(message)


def pause_endpoint(endpoint: WebhookEndpoint, reason: str) -> None:
    """Pause the endpoint with the reason; what was waiting for it is suppressed, saying why."""
    now = utcnow()
    endpoint.paused_at = now
    endpoint.paused_reason = textwrap.shorten(reason, width=300, placeholder=" …")  # whole words
    db.session.execute(
        update(Notification)
        .where(
            Notification.webhook_endpoint_id == endpoint.id,
            Notification.status.in_((NotificationStatus.PENDING, NotificationStatus.QUEUED)),
        )
        .values(
            status=NotificationStatus.SUPPRESSED,
            reason=f"webhook endpoint paused: {reason}"[:300],
            next_attempt_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    log.warning("webhook endpoint %s paused: %s", endpoint.id, reason)
