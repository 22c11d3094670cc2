"""/api/v1/incidents: the console's list (the same filters), one incident with its timeline and notifications,
and acknowledge / resolve — the one effect of services.inbound.acks, as from every other path."""

from __future__ import annotations

from flask import abort, request, url_for

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required
from webapp.api.common import (
    DATETIME,
    MAX_LIMIT,
    NULLABLE_DATETIME,
    iso,
    limited,
    page_limit,
    page_of,
    path_id,
    query_param,
    ref,
    responses,
)
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.inputs import InvalidQuery, query_bool, query_choice, query_int
from webapp.models import EVENT_SOURCES, Incident, IncidentState, Notification, Severity, User
from webapp.services.delivery import delivery_log
from webapp.services.inbound import acks
from webapp.services.overview import incident_queries
from webapp.services.overview.incident_queries import IncidentFilter
from webapp.services.routing.outgoing import incident_json

CURSOR_TEXT = "the next_cursor of a page this API gave out"


def incident_item(row: incident_queries.IncidentRow) -> dict:
    """An incident as the list shows it: its state and who acted (as outgoing webhooks say it), its customer,
    its distinguishing labels and who was paged."""
    incident = row.incident
    return {
        **incident_json(incident),
        "customer": row.customer,
        "event_type": incident.event_type,
        "summary": incident.summary,
        "labels": incident.labels or {},
        "escalation_level": incident.escalation_level,
        "last_event_at": iso(incident.last_event_at),
        "paged": row.paged,
        "url": url_for("api.incident_detail", incident_id=incident.id),
    }


def incident_full(incident: Incident) -> dict:
    """One incident with its timeline (its entries, oldest first) and the notifications about it the reader
    sees (delivery_log.visible_to)."""
    from webapp.api.notifications import notification_json

    reader_view = delivery_log.visible_to(tenancy.current(), db.select(Notification))
    items = incident_queries.timeline(incident, notifications_query=reader_view)
    [row] = incident_queries.rows([incident])
    return {
        **incident_item(row),
        "data": incident.data or {},
        "links": [{"name": name, "url": url} for name, url in incident_queries.links(incident)],
        "timeline": [
            {"kind": item.kind, "body": item.text, "actor": item.actor, "created_at": iso(item.at)}
            for item in items
            if item.notification is None
        ],
        "notifications": [notification_json(item.notification) for item in items if item.notification is not None],
    }


def _filter() -> IncidentFilter:
    paged_user_id = None
    if query_bool("paged_me"):
        paged_user_id = tenancy.current().own_user_id
        if paged_user_id is None:
            raise InvalidQuery("paged_me", "left out: this key acts for a customer, not for a person")
    label = request.args.get("label", "")
    if len(label) > 200 or "\x00" in label:
        raise InvalidQuery("label", "a label value: at most 200 characters, no NUL")
    severity = query_choice("severity", Severity)
    return IncidentFilter(
        state=query_choice("state", incident_queries.STATES) or "all",
        severity=Severity(severity) if severity else None,
        customer_id=query_int("customer_id"),
        source=query_choice("source", EVENT_SOURCES),
        label=label or None,
        paged_user_id=paged_user_id,
        unacknowledged=bool(query_bool("unacknowledged")),
        order=query_choice("order", incident_queries.ORDERS) or "newest",
    )


@bp.get("/incidents")
@limited
@api_required("read")
def incident_list():
    f = _filter()
    raw = request.args.get("cursor") or None
    bound = incident_queries.parse_bound(raw, f.order)
    if raw is not None and bound is None:
        raise InvalidQuery("cursor", CURSOR_TEXT)
    found = incident_queries.page(f, principal=tenancy.current(), before=bound, per_page=page_limit())
    items = [incident_item(row) for row in found.items]
    return {"items": items, "next_cursor": incident_queries.format_bound(found.before)}


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
    incident = incident_queries.get(tenancy.current(), incident_id)
    if incident is None:
        abort(404, description="No such incident for this key.")
    return incident


def _actionable(incident_id: int) -> tuple[Incident, User]:
    """The incident and the person acting: 404 unseen, 422 a key without a user, 403 a role that may not."""
    incident = _visible(incident_id)
    principal = tenancy.current()
    user = principal.user
    if user is None:
        raise InvalidPayload("This key has no user to act as.", {"key": "use a key created by a user"})
    principal.check_change(incident.customer_id)  # as the console's buttons: the tenant boundary decides
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
        "customer": {"type": ["string", "null"], "description": "its customer's name"},
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
        "kind": {"type": "string", "examples": ["triggered", "acknowledged", "resolved", "severity", "reopened"]},
        "body": {"type": "string"},
        "actor": {"type": ["string", "null"], "description": "the person who acted, by name"},
        "created_at": DATETIME,
    },
}
DETAIL_PARTS = {
    "data": {"type": "object", "description": "annotations and links of its latest firing event"},
    "links": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name", "url"],
            "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
        },
        "description": "its web links: generator URL, runbook, job logs",
    },
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
            "summary": "List incidents (every state unless ?state=), newest or most severe first",
            "parameters": [
                query_param("state", {"enum": list(incident_queries.STATES)}, "open = triggered or acknowledged; all"),
                query_param("severity", {"enum": SEVERITIES}),
                query_param("customer_id", {"type": "integer", "minimum": 1}),
                query_param("source", {"enum": list(EVENT_SOURCES)}),
                query_param(
                    "label",
                    {"type": "string", "maxLength": 200},
                    "the value of a distinguishing label (" + ", ".join(incident_queries.DISTINGUISHING) + ")",
                ),
                query_param("paged_me", {"type": "boolean"}, "only incidents that paged the key's person"),
                query_param("unacknowledged", {"type": "boolean"}, "only incidents nobody took (triggered)"),
                query_param("order", {"enum": list(incident_queries.ORDERS)}, "newest (default) or severity"),
                query_param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "page size (default 50)"),
                query_param("cursor", {"type": "string"}, "next_cursor of the previous page (same order)"),
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
