"""PagerDuty v3 webhooks: the pure parser (incidents to normalised events)."""

from __future__ import annotations

from typing import Any

from webapp.errors import InvalidPayload
from webapp.models import EventStatus, Severity
from webapp.sources.normalised import NormalisedEvent

SOURCE = "pagerduty"


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


def _summary(value: Any) -> str | None:
    return value.get("summary") if isinstance(value, dict) and isinstance(value.get("summary"), str) else None


def _severity(incident: dict) -> Severity:
    priority = _summary(incident.get("priority"))
    if priority and priority.upper() in PRIORITY_SEVERITY:
        return PRIORITY_SEVERITY[priority.upper()]
    return {"high": Severity.HIGH, "low": Severity.LOW}.get(incident.get("urgency"), Severity.MEDIUM)


def parse(payload: dict[str, Any]) -> list[NormalisedEvent]:
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
        NormalisedEvent(
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
            incident_key=incident_id,
        )
    ]
