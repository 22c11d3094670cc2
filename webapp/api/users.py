"""GET /api/v1/users/<id>/explain?event=<id>: for one user and one event, what happened on every channel, and why."""

from __future__ import annotations

from flask import abort

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required
from webapp.api.common import path_id, responses
from webapp.extensions import db
from webapp.inputs import query_id
from webapp.models import PERSONAL_CHANNELS, Event, User
from webapp.services.routing import explain


@bp.get("/users/<int:user_id>/explain")
@api_required("read")
def user_explain(user_id: int):
    event_id = query_id("event", required=True)
    user = _visible_user(user_id)
    event = db.session.get(Event, event_id)
    if event is None:
        abort(404, description=f"No event {event_id}.")
    tenancy.current().check_see(event.customer_id)
    answer = explain.for_user(event, user)
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
        "rules": answer["rules"],
        "channels": answer["channels"],
        "escalation": answer["escalation"],
        "webhook": "outgoing webhooks go to endpoints, not to users: see the endpoint's delivery log",
    }


def _visible_user(user_id: int) -> User:
    """The user, if the caller sees them (tenancy: themselves, or a member of one of the caller's customers)."""
    user = db.session.get(User, user_id)
    if user is None or not tenancy.current().can_see_user(user):
        abort(404, description=f"No user {user_id}.")
    return user


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
            "escalation": {
                "type": ["object", "null"],
                "description": "for an incident's event: its escalation policy's steps that reach this user, "
                "when, and whether each was taken",
                "properties": {
                    "policy": {"type": "string"},
                    "incident_id": {"type": "integer"},
                    "steps": {"type": "array", "items": {"type": "object"}},
                },
            },
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
