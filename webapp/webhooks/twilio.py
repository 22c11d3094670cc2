"""Twilio's callbacks: message status (sent/delivered/undelivered/failed) and inbound SMS replies.

Both are signed with X-Twilio-Signature over the URL Twilio called, which is PUBLIC_BASE_URL + path
(behind a proxy the URL the app sees is not the one Twilio signed).
"""

from __future__ import annotations

import logging

from flask import Response, current_app, request
from sqlalchemy import update
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.exceptions import Forbidden

from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, utcnow
from webapp.services.inbound import sms_replies
from webapp.webhooks import bp

log = logging.getLogger(__name__)

S = NotificationStatus
# Twilio's MessageStatus -> ours, and the statuses a row may still move from (never backwards).
_MOVES = {
    "sent": (S.SENT, (S.QUEUED, S.SENDING)),
    "delivered": (S.DELIVERED, (S.QUEUED, S.SENDING, S.SENT)),
    "undelivered": (S.FAILED, (S.QUEUED, S.SENDING, S.SENT)),
    "failed": (S.FAILED, (S.QUEUED, S.SENDING, S.SENT)),
}


def _verify_signature() -> None:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    if not token:
        raise Forbidden("Twilio is not configured here (no TWILIO_AUTH_TOKEN): callbacks cannot be verified.")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        raise Forbidden("Missing X-Twilio-Signature.")
    url = current_app.config["PUBLIC_BASE_URL"] + request.full_path.rstrip("?")
    params = request.form.to_dict(flat=True)
    if not RequestValidator(token).validate(url, params, signature):  # compares in constant time
        raise Forbidden("Bad X-Twilio-Signature for " + current_app.config["PUBLIC_BASE_URL"] + request.path)


@bp.post("/twilio/status")
def twilio_status():
    _verify_signature()
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    reported = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").lower()
    move = _MOVES.get(reported)
    if not sid or move is None:
        return "", 204  # queued/accepted/sending/...: nothing to record
    target, movable = move
    now = utcnow()
    values: dict = {"status": target, "updated_at": now}
    error_code = request.form.get("ErrorCode") or None
    if target == S.DELIVERED:
        values["delivered_at"] = now
    elif target == S.FAILED:
        values.update(
            failed_at=now,
            error_code=error_code,
            error_message=f"Twilio reported the SMS {reported}" + (f" (error {error_code})" if error_code else ""),
        )
    elif target == S.SENT:
        values["sent_at"] = now
    recipient = db.session.execute(
        update(Notification)
        .where(Notification.provider_id == sid, Notification.channel == Channel.SMS, Notification.status.in_(movable))
        .values(**values)
        .returning(Notification.recipient)
        .execution_options(synchronize_session=False)
    ).scalar()
    if recipient and error_code == "21610":
        sms_replies.opt_out(recipient, via="Twilio error 21610 (recipient unsubscribed)", now=now)
    db.session.commit()
    log.info("twilio status %s for %s: %s", reported, sid, "recorded" if recipient else "no change")
    return "", 204


@bp.post("/twilio/inbound")
def twilio_inbound():
    _verify_signature()
    number = request.form.get("From", "")
    reply = sms_replies.handle(number, request.form.get("Body", ""))
    db.session.commit()
    twiml = MessagingResponse()
    twiml.message(reply.text)
    return Response(str(twiml), mimetype="application/xml")
