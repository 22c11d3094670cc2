"""/api/v1/notifications: the delivery log — every decision, sent or not, with its reason."""

from __future__ import annotations

from flask import abort

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
from webapp.extensions import db
from webapp.inputs import query_choice, query_int, query_time
from webapp.models import EVENT_TYPES, Channel, Event, Notification, NotificationStatus
from webapp.services.delivery import delivery_log

ORDERINGS = ("-created_at", "created_at", "-sent_at", "sent_at")


def notification_json(n: Notification) -> dict:
    return {
        "id": n.id,
        "event_id": n.event_id,
        "user_id": n.user_id,
        "customer_id": n.customer_id,
        "channel": str(n.channel),
        "recipient": n.masked_recipient if n.recipient else None,
        "subject": n.subject,
        "body": n.body,
        "status": str(n.status),
        "reason": n.reason,
        "provider_id": n.provider_id,
        "simulated": bool(n.simulated),
        "attempts": n.attempts or 0,
        "error_code": n.error_code,
        "error_message": n.error_message,
        "sms_segments": n.sms_segments,
        "deliver_after": iso(n.deliver_after),
        "created_at": iso(n.created_at),
        "queued_at": iso(n.queued_at),
        "sent_at": iso(n.sent_at),
        "delivered_at": iso(n.delivered_at),
        "failed_at": iso(n.failed_at),
    }


def visible_notifications():
    return delivery_log.visible_to(tenancy.current(), db.select(Notification))


@bp.get("/notifications")
@limited
@api_required("read")
def notification_list():
    query = visible_notifications()
    customer_id = query_int("customer_id")
    if customer_id is not None:
        query = query.where(Notification.customer_id == customer_id)
    channel = query_choice("channel", list(Channel))
    if channel is not None:
        query = query.where(Notification.channel == channel)
    status = query_choice("status", list(NotificationStatus))
    if status is not None:
        query = query.where(Notification.status == status)
    user_id = query_int("user_id")
    if user_id is not None:
        query = query.where(Notification.user_id == user_id)
    event_type = query_choice("event_type", EVENT_TYPES)
    ticket_id = query_int("ticket_id")
    event_id = query_int("event_id")
    if event_id is not None:
        query = query.where(Notification.event_id == event_id)
    if event_type is not None or ticket_id is not None:
        events = db.select(Event.id)
        if event_type is not None:
            events = events.where(Event.event_type == event_type)
        if ticket_id is not None:
            events = events.where(Event.ticket_id == ticket_id)
        query = query.where(Notification.event_id.in_(events))
    ordering = query_choice("ordering", ORDERINGS) or "-created_at"
    column = Notification.sent_at if ordering.endswith("sent_at") else Notification.created_at
    if column is Notification.sent_at:
        query = query.where(Notification.sent_at.is_not(None))  # ordered by send time: the ones sent
    after, before = query_time("created_after"), query_time("created_before")
    if after is not None:
        query = query.where(Notification.created_at >= after)
    if before is not None:
        query = query.where(Notification.created_at < before)
    return keyset_answer(query, column, Notification.id, notification_json, descending=ordering.startswith("-"))


@bp.get("/notifications/<int:notification_id>")
@limited
@api_required("read")
def notification_detail(notification_id: int):
    notification = db.session.scalar(visible_notifications().where(Notification.id == notification_id))
    if notification is None:
        abort(404, description="No such notification for this key.")
    return notification_json(notification)


OPENAPI_SCHEMAS = {
    "Notification": {
        "type": "object",
        "required": ["id", "channel", "status", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "event_id": {"type": ["integer", "null"]},
            "user_id": {"type": ["integer", "null"]},
            "customer_id": {"type": ["integer", "null"]},
            "channel": {"enum": [str(c) for c in Channel]},
            "recipient": {"type": ["string", "null"], "description": "phone numbers masked to the last 4 digits"},
            "subject": {"type": ["string", "null"]},
            "body": {"type": "string"},
            "status": {"enum": [str(s) for s in NotificationStatus]},
            "reason": {"type": ["string", "null"]},
            "provider_id": {"type": ["string", "null"]},
            "simulated": {"type": "boolean"},
            "attempts": {"type": "integer"},
            "error_code": {"type": ["string", "null"]},
            "error_message": {"type": ["string", "null"]},
            "sms_segments": {"type": ["integer", "null"]},
            "deliver_after": NULLABLE_DATETIME,
            "created_at": DATETIME,
            "queued_at": NULLABLE_DATETIME,
            "sent_at": NULLABLE_DATETIME,
            "delivered_at": NULLABLE_DATETIME,
            "failed_at": NULLABLE_DATETIME,
        },
    }
}

OPENAPI_PATHS = {
    "/api/v1/notifications": {
        "get": {
            "tags": ["notifications"],
            "summary": "The delivery log: filter, order by created or sent time, page by cursor",
            "parameters": [
                query_param("customer_id", {"type": "integer", "minimum": 1}),
                query_param("event_type", {"enum": list(EVENT_TYPES)}),
                query_param("channel", {"enum": [str(c) for c in Channel]}),
                query_param("status", {"enum": [str(s) for s in NotificationStatus]}),
                query_param("ticket_id", {"type": "integer", "minimum": 1}),
                query_param("event_id", {"type": "integer", "minimum": 1}),
                query_param("user_id", {"type": "integer", "minimum": 1}),
                query_param("created_after", DATETIME),
                query_param("created_before", DATETIME),
                query_param("ordering", {"enum": list(ORDERINGS)}, "sent_at orderings list only sent rows"),
                *PAGE_PARAMS,
            ],
            "responses": responses(200, page_of(ref("Notification"))),
        }
    },
    "/api/v1/notifications/{notification_id}": {
        "parameters": [path_id("notification_id")],
        "get": {
            "tags": ["notifications"],
            "summary": "One notification",
            "responses": responses(200, ref("Notification"), 404),
        },
    },
}
