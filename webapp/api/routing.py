"""POST /api/v1/routing/preview: the dry run. Who would hear about this event, on which channel, when, and why
not — decided by the same code as real routing, with nothing stored and nothing sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from werkzeug.exceptions import Forbidden

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required
from webapp.api.common import responses
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.inputs import is_id, read_json_object, utc_time
from webapp.models import (
    EVENT_TYPES,
    PERSONAL_CHANNELS,
    SOURCE_KINDS,
    Customer,
    Event,
    EventStatus,
    Severity,
    Ticket,
    utcnow,
)
from webapp.services.routing import decisions, preview
from webapp.validation import shown_recipient

EVENT_FIELDS = ("type", "severity", "status", "customer", "title", "body", "labels", "job_type", "ticket", "source")


@bp.post("/routing/preview")
@api_required("write")
def routing_preview():
    body = read_json_object()
    now = _moment(body.get("at"))
    customer_id = _customer(body.get("customer"), "customer") if "customer" in body else None
    if "source" in body or "payload" in body:
        events = _from_webhook(body, customer_id)
    elif "event" in body:
        events = [_from_event(body["event"])]
    else:
        raise InvalidPayload(
            "Send {'source': <webhook source>, 'payload': {...}} or {'event': {...}}.",
            {"event": "required unless source and payload are given"},
        )
    for event in events:
        _check_visible(event.customer_id)
    result = preview.run(events, now=now)
    index = {id(event): position for position, event in enumerate(events)}
    return {
        "at": now.isoformat(),
        "events": [_event_json(event, result.duplicates.get(id(event))) for event in events],
        "decisions": [_decision_json(d, index[id(d.event)], now) for d in result.decisions],
        "summary": result.summary(),
        "escalation": [
            {"event": index[key], **plan.as_json()} for key, plan in result.escalation.items() if key in index
        ],
    }


def _moment(value: Any) -> datetime:
    if value is None:
        return utcnow()
    try:
        return utc_time(str(value))
    except ValueError:
        raise InvalidPayload("'at' must be an ISO 8601 time.", {"at": f"{value!r} is not a time"}) from None


def _customer(value: Any, where: str) -> int | None:
    """A customer by id or by name; 422 naming the field if there is no such customer."""
    if value is None:
        return None
    column = Customer.id if isinstance(value, int) and not isinstance(value, bool) else Customer.name
    if column is Customer.name and not isinstance(value, str):
        raise InvalidPayload("The customer is an id or a name.", {where: "must be an id or a name"})
    if column is Customer.id and not is_id(value):
        raise InvalidPayload("No such customer.", {where: f"no customer {value!r}"})
    found = db.session.scalar(db.select(Customer.id).where(column == value))
    if found is None or not tenancy.current().can_see(found):
        raise InvalidPayload("No such customer.", {where: f"no customer {value!r}"})
    return found


def _from_webhook(body: dict, customer_id: int | None) -> list[Event]:
    return preview.events_from_webhook(body.get("source"), body.get("payload"), customer_id)


def _from_event(data: Any) -> Event:
    if not isinstance(data, dict):
        raise InvalidPayload("'event' must be an object.", {"event": "required object"})
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - set(EVENT_FIELDS))
    if unknown:
        errors["event"] = f"unknown fields: {', '.join(unknown)}; known: {', '.join(EVENT_FIELDS)}"
    event_type = data.get("type", "alert")
    if event_type not in EVENT_TYPES:
        errors["event.type"] = f"must be one of: {', '.join(EVENT_TYPES)}"
    severity = data.get("severity", "info")
    if severity not in {s.value for s in Severity}:
        errors["event.severity"] = f"must be one of: {', '.join(s.value for s in Severity)}"
    status = data.get("status", "firing")
    if status not in {s.value for s in EventStatus}:
        errors["event.status"] = f"must be one of: {', '.join(s.value for s in EventStatus)}"
    for key in ("title", "body", "job_type", "source"):
        if data.get(key) is not None and not isinstance(data[key], str):
            errors[f"event.{key}"] = "must be a string"
    labels = data.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        errors["event.labels"] = "must be an object of string values"
    ticket_id = data.get("ticket")
    if ticket_id is not None and not is_id(ticket_id):
        errors["event.ticket"] = "must be a ticket id"
    if errors:
        raise InvalidPayload("Not a valid event.", errors)
    customer_id = _customer(data.get("customer"), "event.customer")
    if ticket_id is not None:
        ticket_customer = db.session.scalar(db.select(Ticket.customer_id).where(Ticket.id == ticket_id))
        if ticket_customer is None or not tenancy.current().can_see(ticket_customer):
            raise InvalidPayload("No such ticket.", {"event.ticket": f"no ticket {ticket_id}"})
        customer_id = customer_id or ticket_customer
    return Event(
        source=data.get("source") or "api",
        event_type=event_type,
        dedup_key=preview.PREVIEW_KEY,
        status=EventStatus(status),
        severity=Severity(severity),
        title=(data.get("title") or f"Preview {event_type}")[:300],
        body=data.get("body") or "",
        labels=labels,
        data={},
        job_type=data.get("job_type"),
        customer_id=customer_id,
        ticket_id=ticket_id,
    )


def _check_visible(customer_id: int | None) -> None:
    principal = tenancy.current()
    if customer_id is None and not principal.sees_all:
        raise Forbidden("This key is limited to its customers: preview an event of one of them (give 'customer').")
    principal.check_see(customer_id)


def _event_json(event: Event, duplicate_of: int | None) -> dict:
    return {
        "title": event.title,
        "event_type": event.event_type,
        "severity": str(event.severity),
        "status": str(event.status),
        "source": event.source,
        "customer_id": event.customer_id,
        "ticket_id": event.ticket_id,
        "duplicate_of": duplicate_of,
    }


def decision_json(decision: decisions.Decision) -> dict:
    """One decision as the API shows it (also used by /users/<id>/explain)."""
    person = decision.person
    recipient = shown_recipient(decision.channel, decision.recipient)
    return {
        "user": {"id": person.id, "email": person.email, "name": person.name, "role": str(person.role)},
        "channel": str(decision.channel),
        "decision": str(decision.status),
        "reason": decision.reason,
        "hold": decision.hold,
        "recipient": recipient,
        "rules": decision.rules_source,
    }


def _decision_json(decision: decisions.Decision, event_index: int, now: datetime) -> dict:
    when = preview.when(decision, now)
    return {"event": event_index, **decision_json(decision), "when": when.isoformat() if when else None}


_DECISION = {
    "type": "object",
    "properties": {
        "event": {"type": "integer", "description": "index into events"},
        "user": {"type": "object"},
        "channel": {"type": "string", "enum": [str(c) for c in PERSONAL_CHANNELS]},
        "decision": {"type": "string", "enum": ["sent", "pending", "deferred", "suppressed"]},
        "reason": {"type": ["string", "null"]},
        "hold": {"type": ["string", "null"], "enum": ["quiet_hours", "aggregation", "hourly_cap", None]},
        "recipient": {"type": ["string", "null"]},
        "rules": {"type": "string"},
        "when": {"type": ["string", "null"], "format": "date-time"},
    },
}

OPENAPI_SCHEMAS = {
    "RoutingPreviewRequest": {
        "type": "object",
        "description": "A webhook body as its sender posts it ({source, payload}), or one event ({event}).",
        "properties": {
            "source": {"type": "string", "enum": list(SOURCE_KINDS.names), "description": "the webhook's sender"},
            "payload": {"type": "object"},
            "event": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": list(EVENT_TYPES)},
                    "severity": {"type": "string", "enum": [s.value for s in Severity]},
                    "status": {"type": "string", "enum": [s.value for s in EventStatus]},
                    "customer": {"type": ["integer", "string"]},
                    "title": {"type": "string"},
                    "body": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "job_type": {"type": "string"},
                    "ticket": {"type": "integer"},
                },
            },
            "customer": {"type": ["integer", "string"], "description": "the customer of webhook events"},
            "at": {"type": "string", "format": "date-time", "description": "decide as of this time"},
        },
    },
    "RoutingDecision": _DECISION,
    "RoutingPreview": {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "events": {"type": "array", "items": {"type": "object"}},
            "decisions": {"type": "array", "items": {"$ref": "#/components/schemas/RoutingDecision"}},
            "summary": {"type": "object", "additionalProperties": {"type": "integer"}},
            "escalation": {
                "type": "array",
                "description": "for each event that would open an incident: its escalation policy, and which step "
                "would reach whom, and when, if nobody acknowledges",
                "items": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "integer", "description": "its index in events"},
                        "policy": {"type": "string"},
                        "steps": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    },
}

OPENAPI_PATHS = {
    "/api/v1/routing/preview": {
        "post": {
            "summary": "Dry run: who would be notified of this event, on which channel, when and why not",
            "description": "Uses the same decisions as real routing; stores nothing and sends nothing.",
            "operationId": "routing_preview",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RoutingPreviewRequest"}}},
            },
            "responses": responses(
                200, {"$ref": "#/components/schemas/RoutingPreview"}, 403, 413, 415, 422, description="The decisions"
            ),
        }
    }
}
