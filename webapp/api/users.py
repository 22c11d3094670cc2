"""GET /api/v1/users/<id>/explain?event=<id>: for one user and one event, what happened on every channel, and why."""

from __future__ import annotations

from flask import abort

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required
from webapp.api.common import path_id, responses
from webapp.extensions import db
from webapp.inputs import query_id
from webapp.models import PERSONAL_CHANNELS, Event, Notification, User
from webapp.services.routing import decisions


@bp.get("/users/<int:user_id>/explain")
@api_required("read")
def user_explain(user_id: int):
    event_id = query_id("event", required=True)
    user = _visible_user(user_id)
    event = db.session.get(Event, event_id)
    if event is None:
        abort(404, description=f"No event {event_id}.")
    tenancy.current().check_see(event.customer_id)
    rows = {
        str(n.channel): n
        for n in db.session.scalars(
            db.select(Notification).where(Notification.event_id == event.id, Notification.user_id == user.id)
        )
    }
    digests = {
        n.id: n
        for n in db.session.scalars(
            db.select(Notification).where(Notification.id.in_([r.digest_id for r in rows.values() if r.digest_id]))
        )
    }
    decided = {str(d.channel): d for d in decisions.plan([event], now=event.created_at, only_users=[user.id])}
    channels = []
    for channel in PERSONAL_CHANNELS:
        row, decision = rows.get(str(channel)), decided.get(str(channel))
        channels.append(_channel_answer(str(channel), row, decision, digests.get(row.digest_id) if row else None))
    return {
        "user": {"id": user.id, "email": user.email, "name": user.name, "role": str(user.role)},
        "event": {
            "id": event.id,
            "title": event.title,
            "event_type": event.event_type,
            "severity": str(event.severity),
            "status": str(event.status),
            "customer_id": event.customer_id,
            "created_at": event.created_at.isoformat(),
        },
        "rules": next((d.rules_source for d in decided.values()), None),
        "channels": channels,
        "webhook": "outgoing webhooks go to endpoints, not to users: see the endpoint's delivery log",
    }


def _visible_user(user_id: int) -> User:
    """The user, if the caller sees them (tenancy: themselves, or a member of one of the caller's customers)."""
    user = db.session.get(User, user_id)
    if user is None or not tenancy.current().can_see_user(user):
        abort(404, description=f"No user {user_id}.")
    return user


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


OPENAPI_SCHEMAS = {
    "ChannelExplanation": {
        "type": "object",
        "properties": {
            "channel": {"type": "string", "enum": [str(c) for c in PERSONAL_CHANNELS]},
            "recorded": {"type": "boolean", "description": "a Notification row exists for this channel"},
            "status": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
            "explanation": {"type": "string", "description": "what happened, in words"},
            "notification": {"type": "object"},
            "digest": {"type": "object"},
        },
    },
    "UserExplanation": {
        "type": "object",
        "properties": {
            "user": {"type": "object"},
            "event": {"type": "object"},
            "rules": {"type": ["string", "null"], "description": "the preference or role default that decided"},
            "channels": {"type": "array", "items": {"$ref": "#/components/schemas/ChannelExplanation"}},
            "webhook": {"type": "string"},
        },
    },
}

OPENAPI_PATHS = {
    "/api/v1/users/{user_id}/explain": {
        "get": {
            "summary": "Why was (or was not) this user notified of this event, on every channel",
            "operationId": "user_explain",
            "parameters": [
                path_id("user_id"),
                {"name": "event", "in": "query", "required": True, "schema": {"type": "integer"}},
            ],
            "responses": responses(
                200,
                {"$ref": "#/components/schemas/UserExplanation"},
                403,
                404,
                description="One answer per channel",
            ),
        }
    }
}
