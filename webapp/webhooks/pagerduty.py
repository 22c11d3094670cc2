"""PagerDuty v3 webhooks: X-PagerDuty-Signature verified, incidents become events (and tickets)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import request

from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import Customer, Event, EventStatus, Priority, Severity, Ticket, TicketStatus, WebhookSource
from webapp.services.events import ingest
from webapp.services.integrations import webhook_sources
from webapp.services.tickets import tickets
from webapp.webhooks import PARSERS, bp, raw_json_body, read_json_object, store, unauthorized, webhook_doc

SOURCE = "pagerduty"
SIGNATURE_HEADER = "X-PagerDuty-Signature"

STATUS = {
    "incident.triggered": EventStatus.FIRING,
    "incident.acknowledged": EventStatus.ACKNOWLEDGED,
    "incident.resolved": EventStatus.RESOLVED,
    "incident.priority_updated": EventStatus.INFO,
}
PRIORITY_SEVERITY = {
    "P1": Severity.CRITICAL,
    "P2": Severity.HIGH,
    "P3": Severity.MEDIUM,
    "P4": Severity.LOW,
    "P5": Severity.INFO,
}
SEVERITY_PRIORITY = {
    Severity.CRITICAL: Priority.URGENT,
    Severity.HIGH: Priority.HIGH,
    Severity.MEDIUM: Priority.NORMAL,
    Severity.LOW: Priority.LOW,
    Severity.INFO: Priority.LOW,
}


def _summary(value: Any) -> str | None:
    return value.get("summary") if isinstance(value, dict) and isinstance(value.get("summary"), str) else None


def _severity(incident: dict) -> Severity:
    priority = _summary(incident.get("priority"))
    if priority and priority.upper() in PRIORITY_SEVERITY:
        return PRIORITY_SEVERITY[priority.upper()]
    return {"high": Severity.HIGH, "low": Severity.LOW}.get(incident.get("urgency"), Severity.MEDIUM)


def parse(payload: dict[str, Any]) -> list[ingest.NormalisedEvent]:
    """Pure: a v3 webhook body to one normalised event; [] for event types we do not act on."""
    event = payload.get("event")
    if not isinstance(event, dict):
        raise InvalidPayload("Not a PagerDuty v3 webhook: 'event' must be an object.", {"event": "required object"})
    event_type = event.get("event_type")
    if not isinstance(event_type, str):
        raise InvalidPayload("Not a PagerDuty v3 webhook.", {"event.event_type": "required string"})
    if event_type not in STATUS:
        return []
    incident = event.get("data")
    errors = {}
    if not isinstance(incident, dict):
        errors["event.data"] = "required incident object"
        incident = {}
    incident_id = incident.get("id")
    if not isinstance(incident_id, str) or not 0 < len(incident_id) <= 100:
        errors["event.data.id"] = "required incident id (string)"
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 100:
        errors["event.id"] = "required event id (string)"
    title = incident.get("title")
    if not isinstance(title, str) or not title.strip():
        errors["event.data.title"] = "required string"
    if errors:
        raise InvalidPayload("Not a valid PagerDuty incident webhook.", errors)
    status = STATUS[event_type]
    # One row per incident and state; priority changes are each their own (informational) row.
    dedup_key = incident_id if status != EventStatus.INFO else f"{incident_id}:priority:{event_id}"
    service = _summary(incident.get("service"))
    priority = _summary(incident.get("priority"))
    agent = _summary(event.get("agent"))
    verb = event_type.removeprefix("incident.").replace("_", " ")
    return [
        ingest.NormalisedEvent(
            source=SOURCE,
            dedup_key=dedup_key,
            status=status,
            severity=_severity(incident),
            title=title.strip()[:300],
            body=f"PagerDuty incident {verb}"
            + (f" by {agent}" if agent else "")
            + (f" ({service})" if service else ""),
            labels={
                key: value
                for key, value in (
                    ("service", service),
                    ("priority", priority),
                    ("urgency", incident.get("urgency")),
                    ("incident_number", str(incident.get("number", ""))),
                )
                if isinstance(value, str) and value
            },
            data={
                "event_id": event_id,
                "event_type": event_type,
                "incident_id": incident_id,
                "html_url": incident.get("html_url") if isinstance(incident.get("html_url"), str) else None,
                "occurred_at": event.get("occurred_at") if isinstance(event.get("occurred_at"), str) else None,
                "agent": agent,
            },
        )
    ]


PARSERS[SOURCE] = parse


def signatures() -> list[str]:
    """The v1 signatures of the header; during a secret rotation PagerDuty sends one per secret."""
    header = request.headers.get(SIGNATURE_HEADER, "")
    return [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]


def _incident_ticket(incident_id: str) -> Ticket | None:
    ticket_id = db.session.scalar(
        db.select(Event.ticket_id)
        .where(Event.source == SOURCE, Event.dedup_key == incident_id, Event.ticket_id.is_not(None))
        .limit(1)
    )
    return db.session.get(Ticket, ticket_id) if ticket_id else None


def _follow_up(source: WebhookSource):
    """Tickets for the new events: created on trigger (where the source says so), updated after."""

    def after(result: ingest.IngestResult) -> dict:
        touched = []
        for event in result.events:
            incident_id = event.data["incident_id"]
            ticket = _incident_ticket(incident_id)
            if event.status == EventStatus.FIRING and ticket is None:
                if not (source.create_tickets and source.customer_id):
                    continue
                ticket = tickets.create(
                    customer=db.session.get(Customer, source.customer_id),
                    title=event.title[:200],
                    description=f"{event.body}\n{event.data.get('html_url') or ''}".strip(),
                    priority=SEVERITY_PRIORITY[event.severity],
                    source="PagerDuty",
                )
            elif ticket is None:
                continue
            elif event.status == EventStatus.ACKNOWLEDGED:
                ticket.acknowledged_at = ticket.acknowledged_at or event.created_at
                tickets.add_timeline(ticket, "acknowledged", event.body, data={"pagerduty": incident_id})
            elif event.status == EventStatus.RESOLVED:
                tickets.change_status(ticket, TicketStatus.RESOLVED)
            elif event.status == EventStatus.INFO:
                tickets.set_priority(ticket, SEVERITY_PRIORITY[event.severity])
            event.ticket_id = ticket.id
            touched.append(ticket.key)
        return {"tickets": touched}

    return after


@bp.post("/pagerduty")
def pagerduty():
    body = raw_json_body()
    given = signatures()
    if not given:
        return unauthorized(f"Send the {SIGNATURE_HEADER} header (v1=<HMAC-SHA256 of the body>).")
    sources = webhook_sources.active(SOURCE, name=request.args.get("source"))
    source = webhook_sources.matching(sources, body, given)
    if source is None:
        return unauthorized("No signature matches the secret of an active PagerDuty source.")
    payload = read_json_object()
    items = [replace(item, customer_id=source.customer_id) for item in parse(payload)]
    webhook_sources.touch(source)
    if not items:
        db.session.commit()
        event_type = payload["event"]["event_type"]
        return {"status": "ignored", "message": f"PagerDuty event type {event_type!r} is accepted and ignored."}, 202
    return store(items, after=_follow_up(source), extra={"source": source.name}), 200


OPENAPI_PATHS = {
    "/api/v1/webhooks/pagerduty": webhook_doc(
        "PagerDuty v3 webhook (incident.triggered, acknowledged, resolved, priority_updated)",
        security=[],
        headers=[(SIGNATURE_HEADER, "v1=<hex HMAC-SHA256 of the body>[,v1=...] (several during a secret rotation)")],
    )
}
