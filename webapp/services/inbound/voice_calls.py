"""What a phone call brings back: the digit the person pressed (its Gather callback) and the call's progress
(its status callbacks), both on the call's Notification row.

Digit 1 acknowledges through the one ack path (services.inbound.acks), as the person called; digit 2 takes the
incident's next escalation step now; anything else asks again. A call nobody answers, a busy line or
voicemail ends the row failed, with what Twilio said: not acknowledged, so escalation goes on by itself.

STOP applies to calls too: an opted-out number is not called (see delivery), since voice has no keyword of its
own and the number's owner told OpsRelay to stop; START brings both back.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import update

from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    Incident,
    IncidentState,
    Notification,
    NotificationStatus,
    Ticket,
    User,
    utcnow,
)
from webapp.services.events import escalation, incidents
from webapp.services.inbound import acks, sms_status

S = NotificationStatus
VIA = "phone call"
LIVE = (S.QUEUED, S.SENDING, S.SENT)  # a call still placed or going on
# The call's progress (Twilio's CallStatus) shown on the row while it goes on.
PROGRESS = {"queued": "call queued", "initiated": "call placed", "ringing": "ringing", "in-progress": "call answered"}
# How a call can end without reaching anyone (Twilio's final CallStatus).
NOT_REACHED = {
    "busy": "the line was busy",
    "no-answer": "nobody answered",
    "failed": "the call failed",
    "canceled": "the call was canceled",
}


class Answer(NamedTuple):
    text: str  # said to the caller
    ask_again: bool = False  # the prompt again


def call_of(notification_id: int, call_sid: str | None) -> Notification | None:
    """The voice notification a Gather callback is about (the call Twilio names must be its call), or None."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.channel != Channel.VOICE:
        return None
    if notification.provider_id and call_sid != notification.provider_id:
        return None
    return notification


def pressed(notification: Notification, digits: str, *, now: datetime | None = None) -> Answer:
    """What the digit pressed on the call does. Flushes; the caller commits."""
    now = now or utcnow()
    event = db.session.get(Event, notification.event_id) if notification.event_id else None
    user = db.session.get(User, notification.user_id) if notification.user_id else None
    if digits not in ("1", "2"):
        return Answer("Sorry, that key does nothing.", ask_again=True)
    if user is None or not user.is_active:
        return Answer("This call is for a user who can no longer act on alerts.")
    incident = db.session.get(Incident, event.incident_id) if event is not None and event.incident_id else None
    if digits == "1":
        return _acknowledge(notification, incident, event, user, now=now)
    if incident is None or incident.state != IncidentState.TRIGGERED:
        return Answer("There is nothing to escalate: this alert is no longer waiting for someone.")
    incidents.entry(incident, "escalate", f"{user.name} asked to escalate now ({VIA})", by=user, via=VIA, now=now)
    if not escalation.escalate_now(incident.id).escalated:
        return Answer("There is no further escalation step for this alert.")
    _note(notification, "pressed 2: escalated", now=now)
    return Answer("Escalated to the next level.")


def _acknowledge(
    notification: Notification, incident: Incident | None, event: Event | None, user: User, *, now: datetime
) -> Answer:
    if incident is not None:
        result = acks.acknowledge(incident, by=user, via=VIA, now=now)
        if not result.acknowledged:
            state = "resolved" if incident.state == IncidentState.RESOLVED else "acknowledged"
            return Answer(f"This alert was already {state}.")
    elif event is not None and event.ticket_id is not None:
        ticket = db.session.get(Ticket, event.ticket_id)
        if ticket is None or not acks.acknowledge_ticket(ticket, by=user, via=VIA, now=now).acknowledged:
            return Answer("This ticket was already acknowledged.")
    else:
        return Answer("There is nothing to acknowledge on this call.")
    _note(notification, "pressed 1: acknowledged", now=now)
    return Answer("Acknowledged. Thank you.")


def _note(notification: Notification, text: str, *, now: datetime) -> None:
    notification.reason = text
    notification.updated_at = now


def record_status(
    sid: str,
    reported: str,
    *,
    answered_by: str | None = None,
    error_code: str | None = None,
    duration: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Move the call with provider id `sid` as Twilio reports it; False if nothing changed. Flushes.

    Answered by a person: delivered. Busy, no answer, failed, canceled, or answered by a machine (voicemail):
    failed, with the reason: nobody acknowledged, so escalation goes on."""
    reported = (reported or "").lower()
    now = now or utcnow()
    if not sid:
        return False
    if reported in PROGRESS:
        return bool(
            db.session.execute(
                update(Notification)
                .where(Notification.provider_id == sid, Notification.channel == Channel.VOICE)
                .where(
                    Notification.status.in_(LIVE),
                    Notification.reason.is_(None) | Notification.reason.in_(list(PROGRESS.values())),
                )
                .values(reason=PROGRESS[reported], updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
        )
    answered_by = (answered_by or "").lower()
    machine = answered_by.startswith("machine") or answered_by == "fax"  # AnsweredBy: human, unknown, machine_*
    if reported == "completed" and not machine:
        seconds = f" ({duration} s)" if duration and duration.isdigit() else ""
        return _advance(sid, S.DELIVERED, None, f"answered{seconds}", now=now)
    if reported == "completed":
        why = f"voicemail answered ({answered_by}): not acknowledged"
        return _advance(sid, S.FAILED, "voicemail", why, now=now)
    if reported in NOT_REACHED:
        why = NOT_REACHED[reported] + (f" (error {error_code})" if error_code else "") + ": not acknowledged"
        return _advance(sid, S.FAILED, error_code or reported, why, now=now)
    return False


def _advance(sid: str, target: NotificationStatus, code: str | None, why: str, *, now: datetime) -> bool:
    """The final status of a call; a digit's outcome already noted on the row stays its reason."""
    kept = db.session.scalar(db.select(Notification.reason).where(Notification.provider_id == sid).limit(1))
    reason = kept if kept and kept.startswith("pressed") else why
    moved = sms_status.advance(
        sid, Channel.VOICE, target, LIVE, error_code=code, error_message=why, now=now, reason=reason
    )
    return moved is not None
