"""Phone calls through Twilio's Calls API, on the SMS channel's own twilio client (same account, same
TWILIO_API_BASE_URL, same connection pool and error classification), and the TwiML they speak. Calls are paced
at TWILIO_CALLS_PER_SECOND for the account (Twilio's CPS), shared by every worker, as messages are per sender.

A call reads the page out (`<Say>`), then asks for one digit (`<Gather>`): 1 acknowledges, 2 escalates. Twilio
posts the digit to the Gather's action URL (signed, as every Twilio callback) and plays the TwiML answered there.
Without Twilio credentials, `ConsoleVoice` logs the call and marks it simulated, as the console SMS does.
"""

from __future__ import annotations

import logging
import uuid

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from webapp.channels.base import PermanentError, SendResult, TransientError
from webapp.channels.sms_twilio import TwilioSms
from webapp.validation import mask_phone

log = logging.getLogger(__name__)

# The call's progress Twilio reports to the status callback (the final ones always are).
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
PROMPT = "Press 1 to acknowledge. Press 2 to escalate."
VOICE = "alice"


def speech(severity: str, title: str, customer: str | None = None) -> str:
    """What a call says before the prompt: short and speakable (severity, title, customer)."""
    title = " ".join(title.split())[:160].rstrip(".")
    where = f" Customer: {customer}." if customer else ""
    return f"OpsRelay {severity} alert. {title}.{where}"


def call_twiml(speech: str, gather_url: str) -> str:
    """What the call says: the page, then the prompt for a digit (asked twice), then goodbye."""
    response = VoiceResponse()
    response.say(speech, voice=VOICE)
    for _ in range(2):
        gather = response.gather(num_digits=1, action=gather_url, method="POST", timeout=8)
        gather.say(PROMPT, voice=VOICE)
    response.say("No answer received. Goodbye.", voice=VOICE)
    return str(response)


def reply_twiml(text: str, *, gather_url: str | None = None) -> str:
    """The answer to a pressed digit: said, then (with `gather_url`) the prompt again, else goodbye."""
    response = VoiceResponse()
    response.say(text, voice=VOICE)
    if gather_url:
        gather = response.gather(num_digits=1, action=gather_url, method="POST", timeout=8)
        gather.say(PROMPT, voice=VOICE)
    response.say("Goodbye.", voice=VOICE)
    response.hangup()
    return str(response)


class TwilioVoice:
    """Places calls with the SMS backend's client: one construction, one account, one pool."""

    simulated = False

    def __init__(self, sms: TwilioSms):
        self.sms = sms

    def call(self, *, to: str, twiml: str, status_callback: str) -> SendResult:
        if not self.sms.from_number:
            raise PermanentError(
                "a call needs TWILIO_PHONE_NUMBER as its caller ID (a Messaging Service sends SMS only)",
                code="no_caller_id",
            )
        if self.sms.calls_pacer is not None:  # Twilio starts a limited number of calls a second per account
            self.sms.calls_pacer.wait_for_slot(f"calls:{self.sms.account_sid}")  # Paced: rescheduled, not an attempt
        try:
            call = self.sms.client.calls.create(
                to=to,
                from_=self.sms.from_number,
                twiml=twiml,
                status_callback=status_callback,
                status_callback_method="POST",
                status_callback_event=STATUS_EVENTS,
                machine_detection="Enable",  # AnsweredBy says when voicemail took the call
            )
        except TwilioRestException as exc:
            raise self.sms._classify(exc) from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"could not reach Twilio: {type(exc).__name__}", code="network") from None
        return SendResult(provider_id=call.sid)


class ConsoleVoice:
    simulated = True

    def call(self, *, to: str, twiml: str, status_callback: str) -> SendResult:
        provider_id = "SIMCA" + uuid.uuid4().hex
        log.info("simulated call %s to %s:\n%s", provider_id, mask_phone(to), twiml)
        return SendResult(provider_id=provider_id, simulated=True)


def backend_for(sms) -> TwilioVoice | ConsoleVoice:
    """Calls through the SMS backend's Twilio client, or simulated where SMS are."""
    return TwilioVoice(sms) if isinstance(sms, TwilioSms) else ConsoleVoice()
