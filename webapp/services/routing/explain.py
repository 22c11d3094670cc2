"""Why was (or was not) this user notified of this event, on every channel: the recorded row if there is one,
else what the routing rules decide for that user now (decisions.plan with only_users). The answer of
GET /api/v1/users/<id>/explain and of the incident page's "Why not notified?"; for an incident's event, also
which steps of its escalation policy reach that user, and when."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import PERSONAL_CHANNELS, Event, Incident, Notification, User
from webapp.services.routing import decisions, policies


def for_user(event: Event, user: User) -> dict:
    """{"rules": the preference or role default that decided, "channels": one answer per personal channel}.
    The caller has checked that the reader sees both the event and the user."""
    rows = {
        str(n.channel): n
        for n in db.session.scalars(
            db.select(Notification).where(Notification.event_id == event.id, Notification.user_id == user.id)
        )
    }
    digest_ids = [r.digest_id for r in rows.values() if r.digest_id]
    digests = (
        {n.id: n for n in db.session.scalars(db.select(Notification).where(Notification.id.in_(digest_ids)))}
        if digest_ids
        else {}
    )
    decided = {str(d.channel): d for d in decisions.plan([event], now=event.created_at, only_users=[user.id])}
    channels = []
    for channel in PERSONAL_CHANNELS:
        row, decision = rows.get(str(channel)), decided.get(str(channel))
        channels.append(_channel_answer(str(channel), row, decision, digests.get(row.digest_id) if row else None))
    return {
        "rules": next((d.rules_source for d in decided.values()), None),
        "channels": channels,
        "escalation": _escalation(event, user),
    }


def _escalation(event: Event, user: User) -> dict | None:
    """For an incident's event: the steps of its escalation policy that reach this user, when, and whether each
    was taken (None for an event outside any incident)."""
    incident = db.session.get(Incident, event.incident_id) if event.incident_id else None
    if incident is None:
        return None
    plan = policies.plan_of_incident(incident)
    steps = []
    for step in plan.steps:
        if step.audience is not None and user.id not in step.audience:
            continue
        taken = step.level <= incident.escalation_level
        answer = {k: v for k, v in step.as_json().items() if k not in ("reaches", "user_ids")}  # them alone
        answer["taken"] = taken
        answer["explanation"] = (
            f"step {step.number} ({step.words}) {'reached' if taken else 'would reach'} "
            f"{'them if routing picks them' if step.audience is None else 'them'} "
            f"at {step.at:%Y-%m-%d %H:%M} UTC"
            + ("" if taken or incident.state == "triggered" else f"; not taken: the incident is {incident.state}")
        )
        steps.append(answer)
    return {"policy": plan.policy, "incident_id": incident.id, "steps": steps}


def _channel_answer(channel: str, row: Notification | None, decision, digest: Notification | None) -> dict:
    if row is not None:
        answer = {
            "channel": channel,
            "recorded": True,
            "status": str(row.status),
            "reason": row.reason,
            "notification": {
                "id": row.id,
                "recipient": row.masked_recipient if row.recipient else None,
                "deliver_after": _iso(row.deliver_after),
                "sent_at": _iso(row.sent_at),
                "delivered_at": _iso(row.delivered_at),
                "failed_at": _iso(row.failed_at),
                "attempts": row.attempts,
                "error_code": row.error_code,
                "error_message": row.error_message,
                "hold": row.hold,
            },
            "explanation": _explain_row(row, digest),
        }
        if digest is not None:
            answer["digest"] = {"id": digest.id, "status": str(digest.status), "sent_at": _iso(digest.sent_at)}
        return answer
    if decision is None:
        explanation = "not a candidate for this event"
    elif not decision.record or decision.status == "suppressed":
        explanation = decision.reason
    else:
        words = decision.reason or "would be sent"
        explanation = f"no notification was recorded; under the current rules: {decision.status} ({words})"
    return {"channel": channel, "recorded": False, "status": None, "reason": explanation, "explanation": explanation}


def _explain_row(row: Notification, digest: Notification | None) -> str:
    if digest is not None:
        return f"{row.reason}; the digest is {digest.status}"
    if row.status in ("sent", "delivered"):
        return f"{row.status} to {row.masked_recipient}" if row.recipient else f"{row.status} (in the app)"
    if row.status == "failed":
        return f"failed: {row.error_message or row.reason}"
    if row.status == "deferred":
        return row.reason or f"held until {_iso(row.deliver_after)}"
    if row.status in ("pending", "queued", "sending"):
        return f"on its way ({row.status})"
    return row.reason or str(row.status)


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
