"""/api/v1/events: create (the generic webhook's fields), list and retrieve with notifications."""

from __future__ import annotations

from dataclasses import replace

from flask import abort
from sqlalchemy.orm import selectinload

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required
from webapp.api.common import (
    DATETIME,
    NULLABLE_DATETIME,
    PAGE_PARAMS,
    body,
    iso,
    json_request,
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
from webapp.inputs import is_id, query_choice, query_int, query_time
from webapp.models import (
    EVENT_SOURCES,
    EVENT_TYPES,
    OPEN_STATES,
    SENDER_EVENT_KINDS,
    Event,
    EventStatus,
    Incident,
    Notification,
    Severity,
)
from webapp.services.delivery import delivery_log
from webapp.services.events import ingest
from webapp.services.inbound import follow_ups
from webapp.sources import generic

SOURCE = "api"


def event_json(event: Event) -> dict:
    return {
        "id": event.id,
        "source": event.source,
        "event_type": event.event_type,
        "dedup_key": event.dedup_key,
        "status": str(event.status),
        "severity": str(event.severity),
        "title": event.title,
        "body": event.body,
        "labels": event.labels or {},
        "data": event.data or {},
        "job_type": event.job_type,
        "customer_id": event.customer_id,
        "ticket_id": event.ticket_id,
        "starts_at": iso(event.starts_at),
        "ends_at": iso(event.ends_at),
        "incident_id": event.incident_id,
        "incident_state": str(event.incident.state) if event.incident else None,
        "acknowledged_at": iso(event.incident.acknowledged_at) if event.incident else None,
        "created_at": iso(event.created_at),
    }


def visible_events():
    return delivery_log.events_visible_to(tenancy.current(), db.select(Event).options(selectinload(Event.incident)))


@bp.post("/events")
@limited
@api_required("write")
def event_create():
    payload = body()
    principal = tenancy.current()
    customer_id = payload.get("customer_id")
    items = generic.parse(payload, source=SOURCE, extra_fields={"customer_id"})
    if customer_id is None:
        customer_id = principal.only_customer_id()
    if customer_id is not None:
        if not is_id(customer_id):
            raise InvalidPayload("Not a valid event.", {"customer_id": "an integer customer id"})
        if principal.customer_named(customer_id) is None:
            raise InvalidPayload("Not a valid event.", {"customer_id": "no such customer for this key"})
    elif not principal.sees_all:
        raise InvalidPayload("Not a valid event.", {"customer_id": "required: this key serves several customers"})
    wanted = bool(payload.get("create_ticket"))
    if wanted and customer_id is None:
        raise InvalidPayload("A ticket needs a customer.", {"customer_id": "required with create_ticket"})
    items = [replace(item, customer_id=customer_id) for item in items]
    follow_up = follow_ups.tickets(customer_id=customer_id, source_label="the API") if wanted else None
    answer = ingest.accept(items, follow_up=follow_up)
    db.session.commit()
    return answer, 201 if answer["new_events"] else 200


@bp.get("/events")
@limited
@api_required("read")
def event_list():
    query = visible_events()
    customer_id = query_int("customer_id")
    if customer_id is not None:
        query = query.where(Event.customer_id == customer_id)
    for name, column, choices in (
        ("event_type", Event.event_type, EVENT_TYPES),
        ("status", Event.status, list(EventStatus)),
        ("severity", Event.severity, list(Severity)),
    ):
        value = query_choice(name, choices)
        if value is not None:
            query = query.where(column == value)
        if name == "status" and value == EventStatus.FIRING:  # still firing: its incident is not resolved
            still_open = db.select(Incident.id).where(Incident.state.in_(OPEN_STATES))
            query = query.where(Event.incident_id.is_(None) | Event.incident_id.in_(still_open))
    source = query_choice("source", EVENT_SOURCES)
    if source is not None:
        query = query.where(Event.source == source)
    after, before = query_time("created_after"), query_time("created_before")
    if after is not None:
        query = query.where(Event.created_at >= after)
    if before is not None:
        query = query.where(Event.created_at < before)
    return keyset_answer(query, Event.created_at, Event.id, event_json)


@bp.get("/events/<int:event_id>")
@limited
@api_required("read")
def event_detail(event_id: int):
    from webapp.api.notifications import notification_json

    event = db.session.scalar(visible_events().where(Event.id == event_id))
    if event is None:
        abort(404, description="No such event for this key.")
    query = db.select(Notification).where(Notification.event_id == event.id).order_by(Notification.id)
    notifications = db.session.scalars(delivery_log.visible_to(tenancy.current(), query))
    return {**event_json(event), "notifications": [notification_json(n) for n in notifications]}


EVENT = {
    "type": "object",
    "required": ["id", "source", "event_type", "status", "severity", "title", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "source": {"type": "string"},
        "event_type": {"type": "string"},
        "dedup_key": {"type": "string"},
        "status": {"enum": [str(s) for s in EventStatus]},
        "severity": {"enum": [str(s) for s in Severity]},
        "title": {"type": "string"},
        "body": {"type": "string"},
        "labels": {"type": "object"},
        "data": {"type": "object"},
        "job_type": {"type": ["string", "null"]},
        "customer_id": {"type": ["integer", "null"]},
        "ticket_id": {"type": ["integer", "null"]},
        "starts_at": NULLABLE_DATETIME,
        "ends_at": NULLABLE_DATETIME,
        "incident_id": {"type": ["integer", "null"], "description": "the incident this event belongs to"},
        "incident_state": {"type": ["string", "null"], "enum": ["triggered", "acknowledged", "resolved", None]},
        "acknowledged_at": NULLABLE_DATETIME,
        "created_at": DATETIME,
    },
}
EVENT_CREATE = {
    "type": "object",
    "required": ["title"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 300},
        "description": {"type": "string", "maxLength": 10000},
        "severity": {"enum": [str(s) for s in Severity], "default": "medium"},
        "status": {"enum": ["firing", "resolved", "info"]},
        "dedup_key": {"type": "string", "maxLength": 200},
        "event_type": {"enum": list(SENDER_EVENT_KINDS.names), "default": "alert"},
        "job_type": {"type": "string", "maxLength": 60},
        "job_url": {"type": "string", "format": "uri", "maxLength": 2000},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 50},
        "create_ticket": {"type": "boolean"},
        "customer_id": {"type": ["integer", "null"], "minimum": 1},
    },
}
INGEST_RESULT = {
    "type": "object",
    "required": ["status", "new_events", "duplicates", "event_ids", "routing"],
    "properties": {
        "status": {"const": "accepted"},
        "new_events": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "event_ids": {"type": "array", "items": {"type": "integer"}},
        "routing": {
            "enum": ["queued", "none"],
            "description": "queued: a job attaches the new events to their incidents, pages and opens tickets right "
            "after this answer (GET /api/v1/events/{id} shows its notifications); none: nothing new to route",
        },
    },
}

OPENAPI_SCHEMAS = {
    "Event": EVENT,
    "EventCreate": EVENT_CREATE,
    "IngestResult": INGEST_RESULT,
    "EventDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/Event"},
            {
                "type": "object",
                "properties": {"notifications": {"type": "array", "items": ref("Notification")}},
            },
        ]
    },
}

OPENAPI_PATHS = {
    "/api/v1/events": {
        "post": {
            "tags": ["events"],
            "summary": "Report an event (write scope): the generic webhook's fields",
            "requestBody": json_request(ref("EventCreate")),
            "responses": {
                **responses(201, ref("IngestResult"), 403, 413, 415, 422, description="Stored"),
                "200": {
                    "description": "Already stored (same dedup_key): nobody is notified twice",
                    "content": {"application/json": {"schema": ref("IngestResult")}},
                },
            },
        },
        "get": {
            "tags": ["events"],
            "summary": "List events, newest first",
            "parameters": [
                query_param("customer_id", {"type": "integer", "minimum": 1}),
                query_param("event_type", {"enum": list(EVENT_TYPES)}),
                query_param("status", {"enum": [str(s) for s in EventStatus]}),
                query_param("severity", {"enum": [str(s) for s in Severity]}),
                query_param("source", {"enum": list(EVENT_SOURCES)}),
                query_param("created_after", DATETIME),
                query_param("created_before", DATETIME),
                *PAGE_PARAMS,
            ],
            "responses": responses(200, page_of(ref("Event"))),
        },
    },
    "/api/v1/events/{event_id}": {
        "parameters": [path_id("event_id")],
        "get": {
            "tags": ["events"],
            "summary": "One event with its notifications",
            "responses": responses(200, ref("EventDetail"), 404),
        },
    },
}
