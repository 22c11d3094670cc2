"""/api/v1/incidents: the console's list (the same filters), one incident with its timeline and notifications,
and acknowledge / resolve — the one effect of services.inbound.acks, as from every other path."""

from __future__ import annotations

import re

from flask import abort, request, url_for

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required
from webapp.api.common import (
    DATETIME,
    NULLABLE_DATETIME,
    PAGE_PARAMS,
    iso,
    keyset_answer,
    limited,
    page_of,
    path_id,
    query_param,
    ref,
    responses,
)
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.inputs import InvalidQuery, query_bool, query_choice, query_choices, query_int
from webapp.models import EVENT_SOURCES, Incident, IncidentState, Severity
from webapp.services.delivery import delivery_log
from webapp.services.inbound import acks
from webapp.services.overview import incident_queries
from webapp.services.overview.incident_queries import IncidentFilter
from webapp.services.routing.outgoing import incident_json

LABEL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,99})=(.{1,200})$")
LABEL_TEXT = "name=value, e.g. service=checkout (a label name: letters, digits, _)"


def incident_item(incident: Incident, *, paged: list[str]) -> dict:
    """An incident as the list shows it: its state and who acted (as outgoing webhooks say it), who was paged."""
    return {
        **incident_json(incident),
        "event_type": incident.event_type,
        "summary": incident.summary,
        "labels": incident.labels or {},
        "escalation_level": incident.escalation_level,
        "last_event_at": iso(incident.last_event_at),
        "paged": paged,
        "url": url_for("api.incident_detail", incident_id=incident.id),
    }


def incident_full(incident: Incident) -> dict:
    """One incident with its timeline and the notifications about it the reader sees."""
    from webapp.api.notifications import notification_json

    timeline = [
        {
            "id": entry.id,
            "kind": entry.kind,
            "body": entry.body,
            "actor_id": entry.actor_id,
            "via": entry.via,
            "event_id": entry.event_id,
            "created_at": iso(entry.created_at),
        }
        for entry in incident_queries.timeline(incident)
    ]
    query = delivery_log.visible_to(tenancy.current(), incident_queries.notifications_query(incident))
    return {
        **incident_item(incident, paged=incident_queries.paged_names([incident.id]).get(incident.id, [])),
        "data": incident.data or {},
        "timeline": timeline,
        "notifications": [notification_json(n) for n in db.session.scalars(query)],
    }


def _filter() -> IncidentFilter:
    label = None
    if raw := request.args.get("label"):
        match = LABEL.match(raw)
        if match is None:
            raise InvalidQuery("label", LABEL_TEXT)
        label = (match[1], match[2])
    paged_user_id = None
    if query_bool("paged_me"):
        paged_user_id = tenancy.current().own_user_id
        if paged_user_id is None:
            raise InvalidQuery("paged_me", "left out: this key acts for a customer, not for a person")
    return IncidentFilter(
        states=tuple(query_choices("state", IncidentState) or ()),
        severities=tuple(query_choices("severity", Severity) or ()),
        customer_id=query_int("customer_id"),
        source=query_choice("source", EVENT_SOURCES),
        label=label,
        paged_user_id=paged_user_id,
        unacknowledged=bool(query_bool("unacknowledged")),
        order=query_choice("order", incident_queries.ORDERS) or "newest",
    )


@bp.get("/incidents")
@limited
@api_required("read")
def incident_list():
    f = _filter()
    query = incident_queries.filtered(f, tenancy.current())
    keys = incident_queries.keys(f.order)
    answer = keyset_answer(query, keys[0], keys[1] if len(keys) > 1 else None, lambda i: incident_item(i, paged=[]))
    paged = incident_queries.paged_names([item["id"] for item in answer["items"]])
    for item in answer["items"]:
        item["paged"] = paged.get(item["id"], [])
    return answer


@bp.get("/incidents/<int:incident_id>")
@limited
@api_required("read")
def incident_detail(incident_id: int):
    return incident_full(_visible(incident_id))


@bp.post("/incidents/<int:incident_id>/ack")
@limited
@api_required("write")
def incident_ack(incident_id: int):
    """Acknowledge: escalation stops for everyone, waiting pages are suppressed, those paged are told who."""
    incident, user = _actionable(incident_id)
    result = acks.acknowledge(incident, by=user, via="api")
    db.session.commit()
    if result.acknowledged:
        outcome, message = "acknowledged", f"#{incident.id} acknowledged by {user.name}."
    elif incident.state == IncidentState.RESOLVED:
        outcome, message = "already", f"#{incident.id} is already resolved ({_who(incident, resolved=True)})."
    else:
        outcome, message = "already", f"#{incident.id} was already acknowledged by {_who(incident)}."
    return {**incident_full(incident), "acknowledged_now": result.acknowledged, "outcome": outcome, "message": message}


@bp.post("/incidents/<int:incident_id>/resolve")
@limited
@api_required("write")
def incident_resolve(incident_id: int):
    """Resolve: escalation stops, waiting pages are suppressed, the all-clear goes to those paged, and its
    ticket is resolved."""
    incident, user = _actionable(incident_id)
    resolved = acks.resolve(incident, by=user, via="api")
    db.session.commit()
    if resolved:
        outcome, message = "resolved", f"#{incident.id} resolved by {user.name}."
    else:
        outcome, message = "already", f"#{incident.id} was already resolved ({_who(incident, resolved=True)})."
    return {**incident_full(incident), "resolved_now": resolved, "outcome": outcome, "message": message}


# --- helpers ---------------------------------------------------------------------------------


def _visible(incident_id: int) -> Incident:
    query = incident_queries.visible_to(tenancy.current(), db.select(Incident).where(Incident.id == incident_id))
    incident = db.session.scalar(query)
    if incident is None:
        abort(404, description="No such incident for this key.")
    return incident


def _actionable(incident_id: int):
    """The incident and the person acting: 404 unseen, 422 a key without a user, 403 a role that may not."""
    incident = _visible(incident_id)
    principal = tenancy.current()
    user = principal.user
    if user is None:
        raise InvalidPayload("This key has no user to act as.", {"key": "use a key created by a user"})
    paged = principal.own_user_id is not None and acks.was_paged(user, incident)
    if not paged:  # those it paged may act on it, as by SMS; others by the tenant boundary
        principal.check_change(incident.customer_id)
    return incident, user


def _who(incident: Incident, *, resolved: bool = False) -> str:
    if resolved:
        return f"by {incident.resolved_by.name}" if incident.resolved_by else f"at {incident.resolved_via or 'source'}"
    return incident.acknowledged_by.name if incident.acknowledged_by else incident.acknowledged_via or "someone"


# --- OpenAPI ---------------------------------------------------------------------------------

STATES = [str(s) for s in IncidentState]
SEVERITIES = [str(s) for s in Severity]
NULLABLE_TEXT = {"type": ["string", "null"]}
INCIDENT = {
    "type": "object",
    "required": ["id", "state", "severity", "title", "source", "triggered_at", "paged", "url"],
    "properties": {
        "id": {"type": "integer"},
        "state": {"enum": STATES},
        "severity": {"enum": SEVERITIES},
        "title": {"type": "string"},
        "source": {"type": "string"},
        "key": {"type": "string", "description": "its identity at the source: fingerprint, incident id, dedup key"},
        "customer_id": {"type": ["integer", "null"]},
        "ticket_id": {"type": ["integer", "null"]},
        "resend_count": {"type": "integer", "description": "times the sender fired it again while open"},
        "triggered_at": DATETIME,
        "acknowledged_at": NULLABLE_DATETIME,
        "acknowledged_by": NULLABLE_TEXT,
        "acknowledged_via": NULLABLE_TEXT,
        "resolved_at": NULLABLE_DATETIME,
        "resolved_by": NULLABLE_TEXT,
        "resolved_via": NULLABLE_TEXT,
        "event_type": {"type": "string"},
        "summary": {"type": "string"},
        "labels": {"type": "object"},
        "escalation_level": {"type": "integer"},
        "last_event_at": NULLABLE_DATETIME,
        "paged": {"type": "array", "items": {"type": "string"}, "description": "who was paged, by name"},
        "url": {"type": "string"},
    },
}
TIMELINE_ENTRY = {
    "type": "object",
    "required": ["kind", "body", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string", "examples": ["triggered", "acknowledged", "resolved", "severity", "reopened"]},
        "body": {"type": "string"},
        "actor_id": {"type": ["integer", "null"]},
        "via": NULLABLE_TEXT,
        "event_id": {"type": ["integer", "null"]},
        "created_at": DATETIME,
    },
}
DETAIL_PARTS = {
    "data": {"type": "object", "description": "annotations and links of its latest firing event"},
    "timeline": {"type": "array", "items": TIMELINE_ENTRY},
    "notifications": {"type": "array", "items": ref("Notification")},
}
ACTION = {
    "outcome": {"enum": ["acknowledged", "resolved", "already"]},
    "message": {"type": "string"},
}

OPENAPI_SCHEMAS = {
    "Incident": INCIDENT,
    "IncidentDetail": {"allOf": [ref("Incident"), {"type": "object", "properties": DETAIL_PARTS}]},
    "IncidentAck": {
        "allOf": [
            ref("IncidentDetail"),
            {
                "type": "object",
                "required": ["acknowledged_now", "outcome", "message"],
                "properties": {"acknowledged_now": {"type": "boolean"}, **ACTION},
            },
        ]
    },
    "IncidentResolve": {
        "allOf": [
            ref("IncidentDetail"),
            {
                "type": "object",
                "required": ["resolved_now", "outcome", "message"],
                "properties": {"resolved_now": {"type": "boolean"}, **ACTION},
            },
        ]
    },
}

_ID = [path_id("incident_id")]
OPENAPI_PATHS = {
    "/api/v1/incidents": {
        "get": {
            "tags": ["incidents"],
            "summary": "List incidents, newest (or most severe) first, with the console's filters",
            "parameters": [
                query_param("state", {"type": "string"}, f"comma-separated: {','.join(STATES)}"),
                query_param("severity", {"type": "string"}, f"comma-separated: {','.join(SEVERITIES)}"),
                query_param("customer_id", {"type": "integer", "minimum": 1}),
                query_param("source", {"enum": list(EVENT_SOURCES)}),
                query_param("label", {"type": "string"}, f"a label's value: {LABEL_TEXT}"),
                query_param("paged_me", {"type": "boolean"}, "only incidents that paged the key's person"),
                query_param("unacknowledged", {"type": "boolean"}, "only incidents nobody took (triggered)"),
                query_param("order", {"enum": list(incident_queries.ORDERS)}, "newest (default) or severity"),
                *PAGE_PARAMS,
            ],
            "responses": responses(200, page_of(ref("Incident"))),
        }
    },
    "/api/v1/incidents/{incident_id}": {
        "parameters": _ID,
        "get": {
            "tags": ["incidents"],
            "summary": "One incident with its timeline and notifications",
            "responses": responses(200, ref("IncidentDetail"), 404),
        },
    },
    "/api/v1/incidents/{incident_id}/ack": {
        "parameters": _ID,
        "post": {
            "tags": ["incidents"],
            "summary": "Acknowledge (write scope): escalation stops, those paged are told; again: outcome 'already'",
            "responses": responses(200, ref("IncidentAck"), 403, 404, 422),
        },
    },
    "/api/v1/incidents/{incident_id}/resolve": {
        "parameters": _ID,
        "post": {
            "tags": ["incidents"],
            "summary": "Resolve (write scope): escalation stops, the all-clear goes out, its ticket is resolved",
            "responses": responses(200, ref("IncidentResolve"), 403, 404, 422),
        },
    },
}
