"""NormalisedEvent: what every source's parser produces, source-independent and not yet stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from webapp.models import EVENT_KINDS, INCIDENT_SOURCES, EventStatus, Severity


@dataclass(frozen=True)
class NormalisedEvent:
    """One event as a sender told it, in our terms; `services.events.ingest` stores and routes it."""

    source: str
    dedup_key: str
    status: EventStatus
    severity: Severity
    title: str
    body: str = ""
    event_type: str = "alert"
    labels: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    customer_id: int | None = None
    job_type: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    ticket_id: int | None = None
    incident_key: str | None = None  # the alert's identity at its sender; its events share one open Incident

    def identity(self) -> str | None:
        """The key of the incident this event belongs to: its sender's (a fingerprint, an incident id), else
        its dedup key; None for what opens no incident (reports, and OpsRelay's own news about an incident)."""
        kind = EVENT_KINDS.get(self.event_type)
        if self.source not in INCIDENT_SOURCES or kind is None or not kind.opens_incident:
            return None
        return (self.incident_key or self.dedup_key)[:255]
