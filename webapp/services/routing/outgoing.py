"""Outgoing webhooks: one channel=webhook Notification per (event, subscribed endpoint), in bulk.

Event names are `webapp.models.WEBHOOK_EVENTS` (event.created, event.resolved, ticket.created, ...); each event
type names its own in `EVENT_KINDS`. An endpoint's filter is a list of those names, and an endpoint with none
gets them all; an endpoint of a customer gets that customer's events only.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import selectinload

from webapp import outbox
from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    EventStatus,
    Incident,
    Notification,
    NotificationStatus,
    WebhookEndpoint,
    utcnow,
    webhook_name,
)
from webapp.queue import DELIVERIES
from webapp.services import bulk
from webapp.services.routing import chat
from webapp.services.routing.decisions import Routed


def event_name(event: Event) -> str:
    return webhook_name(
        event.event_type,
        resolved=event.status == EventStatus.RESOLVED,
        acknowledged=event.status == EventStatus.ACKNOWLEDGED,
    )


def incident_json(incident: Incident | None) -> dict | None:
    """The incident an event belongs to, as outgoing webhooks and the API show it: its state and who acted."""
    if incident is None:
        return None
    return {
        "id": incident.id,
        "state": str(incident.state),
        "severity": str(incident.severity),
        "title": incident.title,
        "source": incident.source,
        "key": incident.key,
        "customer_id": incident.customer_id,
        "ticket_id": incident.ticket_id,
        "resend_count": incident.resend_count,
        "triggered_at": _iso(incident.triggered_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by.name if incident.acknowledged_by else None,
        "acknowledged_via": incident.acknowledged_via,
        "resolved_at": _iso(incident.resolved_at),
        "resolved_by": incident.resolved_by.name if incident.resolved_by else None,
        "resolved_via": incident.resolved_via,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def payload(event: Event, name: str, *, now: datetime, incident: Incident | None = None) -> str:
    """The JSON body, fixed when the event happens (a retry sends the same bytes)."""
    return json.dumps(
        {
            "event": name,
            "sent_at": now.isoformat(),
            "incident": incident_json(incident),
            "data": {
                "id": event.id,
                "source": event.source,
                "event_type": event.event_type,
                "status": str(event.status),
                "severity": str(event.severity),
                "title": event.title,
                "body": event.body,
                "labels": event.labels or {},
                "customer_id": event.customer_id,
                "ticket_id": event.ticket_id,
                "ticket_key": f"OPS-{event.ticket_id}" if event.ticket_id else None,
                "incident_id": event.incident_id,
                "created_at": event.created_at.isoformat() if event.created_at else None,
            },
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def fan_out(events: list[Event], *, now: datetime | None = None) -> list[Routed]:
    """What a customer's integrations hear of these events: its outgoing webhooks and its chat channels
    (routing.chat); flush only."""
    if not events:
        return []
    now = now or utcnow()
    return _to_endpoints(events, now=now) + chat.fan_out(events, now=now)


def _to_endpoints(events: list[Event], *, now: datetime) -> list[Routed]:
    """Pending webhook Notifications for each active, unpaused endpoint subscribed to each event."""
    endpoints = list(
        db.session.scalars(
            db.select(WebhookEndpoint)
            .where(WebhookEndpoint.is_active.is_(True), WebhookEndpoint.paused_at.is_(None))
            .order_by(WebhookEndpoint.id)
        )
    )
    if not endpoints:
        return []
    incidents = _incidents({e.incident_id for e in events if e.incident_id is not None})
    rows = []
    for event in events:
        name = event_name(event)
        body = None
        for endpoint in endpoints:
            if endpoint.customer_id is not None and endpoint.customer_id != event.customer_id:
                continue
            if endpoint.event_types and name not in endpoint.event_types:
                continue
            body = body or payload(event, name, now=now, incident=incidents.get(event.incident_id))
            rows.append(
                {
                    "event_id": event.id,
                    "webhook_endpoint_id": endpoint.id,
                    "customer_id": event.customer_id,
                    "channel": Channel.WEBHOOK,
                    "recipient": endpoint.url[:320],
                    "subject": name,
                    "body": body,
                    "status": NotificationStatus.PENDING,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if not rows:
        return []
    inserted = bulk.insert_returning(Notification, rows, Notification.id, Notification.status)
    outbox.deliver((row.id for row in inserted), queue=DELIVERIES)  # outgoing webhooks: bulk work
    return [Routed(row.id, row.status) for row in inserted]


def _incidents(ids: set[int]) -> dict[int, Incident]:
    if not ids:
        return {}
    found = db.session.scalars(
        db.select(Incident)
        .where(Incident.id.in_(ids))
        .options(selectinload(Incident.acknowledged_by), selectinload(Incident.resolved_by))
    )
    return {incident.id: incident for incident in found}
