"""Twilio's callbacks: message status (sent/delivered/undelivered/failed) and inbound SMS replies.

Both are signed with X-Twilio-Signature over the URL Twilio called, which is PUBLIC_BASE_URL + path
(behind a proxy the URL the app sees is not the one Twilio signed).
"""

from __future__ import annotations

import logging

from flask import Response, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.exceptions import Forbidden

from webapp.extensions import db
from webapp.services.inbound import sms_replies, sms_status
from webapp.webhooks import bp

log = logging.getLogger(__name__)


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
    reported = request.form.get("MessageStatus") or request.form.get("SmsStatus") or ""
    moved = sms_status.record(sid, reported, error_code=request.form.get("ErrorCode") or None)
    db.session.commit()
    log.info("twilio status %s for %s: %s", reported, sid, "recorded" if moved else "no change")
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
