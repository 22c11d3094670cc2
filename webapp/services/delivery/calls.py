"""One claimed voice Notification as a phone call: the TwiML that reads it out and asks for a digit, the Gather
and status callback URLs Twilio will call (PUBLIC_BASE_URL: the address Twilio reaches and signs), and the call
placed through the SMS channel's own Twilio client (webapp.channels.voice_twilio)."""

from __future__ import annotations

from flask import current_app

from webapp.channels import voice_twilio
from webapp.channels.base import PermanentError, SendResult
from webapp.models import Event, Notification

GATHER_PATH = "/api/v1/webhooks/twilio/voice/gather/{notification_id}"
STATUS_PATH = "/api/v1/webhooks/twilio/voice/status"


def gather_url(notification_id: int) -> str:
    return current_app.config["PUBLIC_BASE_URL"] + GATHER_PATH.format(notification_id=notification_id)


def status_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"] + STATUS_PATH


def place(notification: Notification, event: Event | None) -> SendResult:
    """Call the notification's number; TransientError / PermanentError as the SMS channel classifies Twilio's."""
    if not notification.recipient:
        raise PermanentError("no phone number to call", code="no_recipient")
    text = notification.body or (
        voice_twilio.speech(event.severity, event.title) if event else "This is a test call from OpsRelay."
    )
    twiml = voice_twilio.call_twiml(text, gather_url(notification.id))
    backend = voice_twilio.backend_for(current_app.extensions["opsrelay_sms"])
    return backend.call(to=notification.recipient, twiml=twiml, status_callback=status_url())
