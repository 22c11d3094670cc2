"""/api/v1/heartbeats: check-ins (POST /api/v1/heartbeats/<name>, with the heartbeat's own token or an API key
with the write scope) and the list. A check-in of a late heartbeat resolves its alert."""

from __future__ import annotations

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required, authenticate
from webapp.api.common import DATETIME, NULLABLE_DATETIME, iso, limited, query_param, ref, responses
from webapp.errors import json_error
from webapp.extensions import db
from webapp.inputs import query_int
from webapp.models import Heartbeat
from webapp.security import bearer_token
from webapp.services.monitoring import heartbeats
from webapp.services.monitoring.heartbeats import HEARTBEAT, TOKEN_PREFIX


def heartbeat_json(heartbeat: Heartbeat) -> dict:
    return {
        "id": heartbeat.id,
        "customer_id": heartbeat.customer_id,
        **HEARTBEAT.dump(heartbeat),
        "state": heartbeat.state,
        "paused": heartbeat.paused,
        "last_checkin_at": iso(heartbeat.last_checkin_at),
        "due_at": iso(heartbeat.due_at),
        "missed_at": iso(heartbeat.missed_at),
    }


@bp.get("/heartbeats")
@limited
@api_required("read")
def heartbeat_list():
    query = heartbeats.scoped(tenancy.current(), db.select(Heartbeat).order_by(Heartbeat.name, Heartbeat.id))
    return {"items": [heartbeat_json(h) for h in db.session.scalars(query.limit(500))]}


@bp.post("/heartbeats/<name>")
@limited
def heartbeat_check_in(name: str):
    token = bearer_token() or ""
    if token.startswith(TOKEN_PREFIX):
        heartbeat = heartbeats.by_token(token)
        if heartbeat is None or heartbeat.name != name:
            return _refused("This heartbeat token is not valid for this heartbeat.")
    else:
        principal = authenticate()
        principal.require("write")
        heartbeat = heartbeats.named(principal, name, query_int("customer_id"))
    answer = heartbeats.check_in(heartbeat)
    db.session.commit()
    return {"status": "ok", "heartbeat": heartbeat.name, "next_due_at": iso(heartbeat.due_at), **answer}


def _refused(message: str):
    body, status = json_error(401, "unauthorized", message)
    return body, status, {"WWW-Authenticate": 'Bearer realm="opsrelay-heartbeats"'}


CHECK_IN = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "heartbeat": {"type": "string"},
        "next_due_at": DATETIME,
        "resolved": {"type": "boolean"},
        "event_ids": {"type": "array", "items": {"type": "integer"}},
    },
}
OPENAPI_SCHEMAS = {
    "Heartbeat": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "customer_id": {"type": "integer"},
            **HEARTBEAT.read_schema(),
            "state": {"enum": ["up", "waiting", "late", "paused"]},
            "paused": {"type": "boolean"},
            "last_checkin_at": NULLABLE_DATETIME,
            "due_at": DATETIME,
            "missed_at": NULLABLE_DATETIME,
        },
    }
}
OPENAPI_PATHS = {
    "/api/v1/heartbeats": {
        "get": {
            "tags": ["heartbeats"],
            "summary": "List heartbeats",
            "responses": responses(
                200,
                {"type": "object", "properties": {"items": {"type": "array", "items": ref("Heartbeat")}}},
            ),
        }
    },
    "/api/v1/heartbeats/{name}": {
        "post": {
            "tags": ["heartbeats"],
            "summary": "Check in: 'Authorization: Bearer <the heartbeat's token>' or an API key with the write scope",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                query_param("customer_id", {"type": "integer", "minimum": 1}, "when several customers share the name"),
            ],
            "responses": responses(200, CHECK_IN, 403, 404, 422),
        }
    },
}
