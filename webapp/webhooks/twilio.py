"""Twilio's callbacks: message status (sent/delivered/undelivered/failed), inbound SMS replies, and the calls'
digits (Gather) and status.

Both are signed with X-Twilio-Signature over the URL Twilio called, which is PUBLIC_BASE_URL + path
(behind a proxy the URL the app sees is not the one Twilio signed).
"""

from __future__ import annotations

import logging

from flask import Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.exceptions import Forbidden

from webapp.channels import voice_twilio
from webapp.extensions import db
from webapp.services.delivery import calls
from webapp.services.inbound import sms_replies, sms_status, voice_calls
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


@bp.post("/twilio/voice/gather/<int:notification_id>")
def twilio_voice_gather(notification_id: int):
    """The digit pressed on a call: 1 acknowledges, 2 escalates, anything else asks again."""
    _verify_signature()
    notification = voice_calls.call_of(notification_id, request.form.get("CallSid"))
    if notification is None:
        abort(404, description=f"No phone call #{notification_id} here.")
    answer = voice_calls.pressed(notification, request.form.get("Digits", "").strip())
    db.session.commit()
    log.info("call %s of notification %s: %s", request.form.get("CallSid"), notification_id, answer.text)
    again = calls.gather_url(notification_id) if answer.ask_again else None
    return Response(voice_twilio.reply_twiml(answer.text, gather_url=again), mimetype="application/xml")


@bp.post("/twilio/voice/status")
def twilio_voice_status():
    _verify_signature()
    sid = request.form.get("CallSid", "")
    reported = request.form.get("CallStatus", "")
    moved = voice_calls.record_status(
        sid,
        reported,
        answered_by=request.form.get("AnsweredBy") or None,
        error_code=request.form.get("ErrorCode") or None,
        duration=request.form.get("CallDuration") or None,
    )
    db.session.commit()
    log.info("twilio call status %s for %s: %s", reported, sid, "recorded" if moved else "no change")
    return "", 204
