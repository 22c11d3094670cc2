"""/api/v1/tickets: the third seed's ticket API — list, create, retrieve, update, delete; customer-scoped.

Rate limits per key (the seed's 10/min list, 5/min create) come from API_TICKETS_LIST_RATE_LIMIT and
API_TICKETS_CREATE_RATE_LIMIT; a caller over the limit gets 429 as JSON with Retry-After.
"""

from __future__ import annotations

from datetime import datetime

from flask import abort, current_app, request, url_for
from sqlalchemy.orm import selectinload

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required, rate_key
from webapp.api.common import MAX_LIMIT, json_request, path_id, query_param, ref, responses
from webapp.api.ticket_input import check_fields
from webapp.errors import InvalidPayload
from webapp.extensions import db, limiter
from webapp.inputs import query_bool, query_choices, query_int, query_time, read_json_object
from webapp.models import Priority, Ticket, TicketStatus, User, utcnow
from webapp.paging import keyset_page
from webapp.services import audit
from webapp.services.inbound import acks
from webapp.services.tickets import tickets

EDITABLE = {"title", "description", "priority", "status", "assignee_id"}
CREATABLE = EDITABLE - {"status"} | {"customer_id"}


def _list_limit() -> str:
    return current_app.config["API_TICKETS_LIST_RATE_LIMIT"]


def _create_limit() -> str:
    return current_app.config["API_TICKETS_CREATE_RATE_LIMIT"]


def ticket_json(ticket: Ticket, *, timeline: bool = False) -> dict:
    body = {
        "id": ticket.id,
        "key": ticket.key,
        "customer_id": ticket.customer_id,
        "title": ticket.title,
        "description": ticket.description,
        "priority": str(ticket.priority),
        "status": str(ticket.status),
        "assignee_id": ticket.assignee_id,
        "due_at": _iso(ticket.due_at),
        "warn_at": _iso(ticket.warn_at),
        "first_response_due_at": _iso(ticket.first_response_due_at),
        "breached": ticket.breached_at is not None,
        "breached_at": _iso(ticket.breached_at),
        "paused_seconds": ticket.paused_seconds,
        "acknowledged_at": _iso(ticket.acknowledged_at),
        "resolved_at": _iso(ticket.resolved_at),
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "url": url_for("api.ticket_get", ticket_id=ticket.id),
    }
    if timeline:
        body["timeline"] = [
            {"kind": e.kind, "body": e.body, "actor_id": e.actor_id, "created_at": _iso(e.created_at)}
            for e in ticket.timeline
        ]
    return body


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- routes ----------------------------------------------------------------------------------


@bp.get("/tickets")
@limiter.limit(_list_limit, key_func=rate_key)
@api_required("read")
def ticket_list():
    query = tenancy.current().scoped(db.select(Ticket), Ticket.customer_id)
    statuses, priorities = query_choices("status", TicketStatus), query_choices("priority", Priority)
    if statuses:
        query = query.where(Ticket.status.in_(statuses))
    if priorities:
        query = query.where(Ticket.priority.in_(priorities))
    if (customer_id := query_int("customer")) is not None:
        query = query.where(Ticket.customer_id == customer_id)
    if (assignee_id := query_int("assignee")) is not None:
        query = query.where(Ticket.assignee_id == assignee_id)
    if (before := query_time("due_before")) is not None:
        query = query.where(Ticket.due_at < before)
    if (after := query_time("due_after")) is not None:
        query = query.where(Ticket.due_at >= after)
    breached = query_bool("breached")
    if breached is not None:
        query = query.where(Ticket.breached_at.is_not(None) if breached else Ticket.breached_at.is_(None))
    limit = query_int("limit", maximum=MAX_LIMIT) or current_app.config["PER_PAGE"]
    page = keyset_page(query, Ticket.id, per_page=limit, before=query_int("cursor"))  # cursor: the last id seen
    return {"items": [ticket_json(t) for t in page.items], "next_cursor": page.before, "limit": limit}


@bp.post("/tickets")
@limiter.limit(_create_limit, key_func=rate_key)
@api_required("write")
def ticket_create():
    principal = tenancy.current()
    payload = read_json_object()
    fields = check_fields(payload, CREATABLE, required={"title"})
    customer_id = payload.get("customer_id")
    if customer_id is None:
        customer_id = principal.only_customer_id()
    if not isinstance(customer_id, int) or isinstance(customer_id, bool):
        raise InvalidPayload("Invalid ticket.", {"customer_id": "required: the id of the ticket's customer"})
    customer = principal.customer_named(customer_id)
    if customer is None:
        raise InvalidPayload("Invalid ticket.", {"customer_id": "no such customer for this key"})
    assignee = _assignee(fields.get("assignee_id"), customer_id)
    ticket = tickets.create(
        customer=customer,
        title=fields["title"],
        description=fields.get("description", ""),
        priority=fields.get("priority", Priority.NORMAL),
        assignee=assignee,
        actor=principal.user,
        source="api",
    )
    audit.record(actor=principal.user, action="ticket.create", target=ticket, summary=f"{ticket.key} via the API")
    db.session.commit()
    location = url_for("api.ticket_get", ticket_id=ticket.id)
    return ticket_json(ticket), 201, {"Location": location}


@bp.get("/tickets/<int:ticket_id>")
@api_required("read")
def ticket_get(ticket_id: int):
    return ticket_json(_visible(ticket_id), timeline=True)


@bp.route("/tickets/<int:ticket_id>", methods=["PUT", "PATCH"])
@api_required("write")
def ticket_update(ticket_id: int):
    ticket = _changeable(ticket_id)
    payload = read_json_object()
    required = {"title", "priority", "status"} if request.method == "PUT" else set()
    fields = check_fields(payload, EDITABLE | {"customer_id"}, required=required)
    if "customer_id" in payload and payload["customer_id"] != ticket.customer_id:
        raise InvalidPayload("Invalid change.", {"customer_id": "a ticket cannot move to another customer"})
    assignee = _assignee(fields["assignee_id"], ticket.customer_id) if "assignee_id" in fields else None
    actor, now = tenancy.current().user, utcnow()
    changed = []
    for name in ("title", "description"):
        if name in fields and getattr(ticket, name) != fields[name]:
            setattr(ticket, name, fields[name])
            tickets.add_timeline(ticket, "edit", f"{name.capitalize()} changed", actor=actor, now=now)
            changed.append(name)
    if "priority" in fields and tickets.set_priority(ticket, fields["priority"], actor=actor, now=now):
        changed.append("priority")
    if "status" in fields and acks.change_ticket_status(ticket, fields["status"], actor=actor, via="api", now=now):
        changed.append("status")
    if "assignee_id" in fields and tickets.assign(ticket, assignee, actor=actor, now=now):
        changed.append("assignee_id")
    if changed:
        audit.record(actor=actor, action="ticket.update", target=ticket, summary=f"{ticket.key}: {', '.join(changed)}")
    db.session.commit()
    return ticket_json(ticket)


@bp.post("/tickets/<int:ticket_id>/ack")
@api_required("write")
def ticket_ack(ticket_id: int):
    """Acknowledge the ticket: its escalation stops at once."""
    ticket = _changeable(ticket_id)
    user = tenancy.current().user
    if user is None:
        raise InvalidPayload("This key has no user to acknowledge as.", {"key": "use a key created by a user"})
    acknowledged = acks.acknowledge_ticket(ticket, by=user, via="api").acknowledged
    db.session.commit()
    return {**ticket_json(ticket), "acknowledged_now": acknowledged}


@bp.delete("/tickets/<int:ticket_id>")
@api_required("write")
def ticket_delete(ticket_id: int):
    ticket = _changeable(ticket_id)
    audit.record(
        actor=tenancy.current().user, action="ticket.delete", target=ticket, summary=f"{ticket.key}: {ticket.title}"
    )
    db.session.delete(ticket)
    db.session.commit()
    return "", 204


# --- helpers ---------------------------------------------------------------------------------


def _visible(ticket_id: int) -> Ticket:
    ticket = db.session.scalar(db.select(Ticket).where(Ticket.id == ticket_id).options(selectinload(Ticket.timeline)))
    if ticket is None:
        abort(404, description="No such ticket.")
    tenancy.current().check_see(ticket.customer_id)
    return ticket


def _changeable(ticket_id: int) -> Ticket:
    ticket = _visible(ticket_id)
    tenancy.current().check_change(ticket.customer_id)
    return ticket


def _assignee(user_id: int | None, customer_id: int) -> User | None:
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    sees_ticket = user is not None and tenancy.Principal.of_user(user).can_see(customer_id)
    if user is None or not user.is_active or not sees_ticket:
        raise InvalidPayload("Invalid assignee.", {"assignee_id": "no active user of this ticket's customer"})
    return user


_TICKET_PROPS = {
    "id": {"type": "integer"},
    "key": {"type": "string", "examples": ["OPS-42"]},
    "customer_id": {"type": "integer"},
    "title": {"type": "string", "maxLength": 200},
    "description": {"type": "string"},
    "priority": {"type": "string", "enum": [p.value for p in Priority]},
    "status": {"type": "string", "enum": [s.value for s in TicketStatus]},
    "assignee_id": {"type": ["integer", "null"]},
    "due_at": {"type": ["string", "null"], "format": "date-time"},
    "warn_at": {"type": ["string", "null"], "format": "date-time"},
    "first_response_due_at": {"type": ["string", "null"], "format": "date-time"},
    "breached": {"type": "boolean"},
    "breached_at": {"type": ["string", "null"], "format": "date-time"},
    "paused_seconds": {"type": "integer"},
    "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
    "resolved_at": {"type": ["string", "null"], "format": "date-time"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
    "url": {"type": "string"},
    "timeline": {"type": "array", "items": {"type": "object"}},
    "acknowledged_now": {"type": "boolean"},
}
_WRITE_PROPS = {
    "title": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": {"type": "string", "maxLength": 20000},
    "priority": {"type": "string", "enum": [p.value for p in Priority]},
    "assignee_id": {"type": ["integer", "null"], "minimum": 1},
}
OPENAPI_SCHEMAS = {
    "Ticket": {"type": "object", "properties": _TICKET_PROPS, "required": ["id", "key", "title", "status"]},
    "TicketList": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Ticket"}},
            "next_cursor": {"type": ["integer", "null"]},
            "limit": {"type": "integer"},
        },
    },
    "TicketCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["title"],
        "properties": {**_WRITE_PROPS, "customer_id": {"type": "integer", "minimum": 1}},
    },
    "TicketUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **_WRITE_PROPS,
            "status": {"type": "string", "enum": [s.value for s in TicketStatus]},
            "customer_id": {"type": "integer"},
        },
    },
}


_ID = [path_id("ticket_id")]
_FILTERS = [
    query_param(name, schema)
    for name, schema in (
        ("status", {"type": "string", "description": "comma-separated: open,pending,resolved,closed"}),
        ("priority", {"type": "string", "description": "comma-separated: low,normal,high,urgent"}),
        ("customer", {"type": "integer", "minimum": 1}),
        ("assignee", {"type": "integer", "minimum": 1}),
        ("due_before", {"type": "string", "format": "date-time"}),
        ("due_after", {"type": "string", "format": "date-time"}),
        ("breached", {"type": "boolean"}),
        ("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        ("cursor", {"type": "integer", "minimum": 1, "description": "next_cursor of the previous page"}),
    )
]
OPENAPI_PATHS = {
    "/api/v1/tickets": {
        "get": {
            "summary": "List tickets (10/min per key by default)",
            "tags": ["tickets"],
            "parameters": _FILTERS,
            "responses": responses(200, ref("TicketList"), 403, description="A page of tickets"),
        },
        "post": {
            "summary": "Create a ticket (5/min per key by default); its SLA deadline is computed",
            "tags": ["tickets"],
            "requestBody": json_request(ref("TicketCreate")),
            "responses": responses(201, ref("Ticket"), 403, 413, 415, 422, description="Created"),
        },
    },
    "/api/v1/tickets/{ticket_id}/ack": {
        "post": {
            "summary": "Acknowledge a ticket (stops its escalation); repeating it changes nothing",
            "tags": ["tickets"],
            "parameters": _ID,
            "responses": responses(200, ref("Ticket"), 403, 404, description="The ticket"),
        }
    },
    "/api/v1/tickets/{ticket_id}": {
        "get": {
            "summary": "Retrieve a ticket with its timeline",
            "tags": ["tickets"],
            "parameters": _ID,
            "responses": responses(200, ref("Ticket"), 404, description="The ticket"),
        },
        "put": {
            "summary": "Replace a ticket's editable fields (title, priority and status required)",
            "tags": ["tickets"],
            "parameters": _ID,
            "requestBody": json_request(ref("TicketUpdate")),
            "responses": responses(200, ref("Ticket"), 403, 404, 413, 415, 422, description="Updated"),
        },
        "patch": {
            "summary": "Change some of a ticket's fields",
            "tags": ["tickets"],
            "parameters": _ID,
            "requestBody": json_request(ref("TicketUpdate")),
            "responses": responses(200, ref("Ticket"), 403, 404, 413, 415, 422, description="Updated"),
        },
        "delete": {
            "summary": "Delete a ticket",
            "tags": ["tickets"],
            "parameters": _ID,
            "responses": responses(204, None, 403, 404, description="Deleted"),
        },
    },
}
