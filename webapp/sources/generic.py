"""Generic webhooks from any sender (automation systems reporting jobs): the pure parser. The events API
takes the same fields."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from webapp.errors import InvalidPayload
from webapp.models import SENDER_EVENT_KINDS, EventStatus, Severity
from webapp.sources.normalised import NormalisedEvent

SOURCE = "generic"


FIELDS = {
    "title",
    "description",
    "severity",
    "status",
    "dedup_key",
    "event_type",
    "job_type",
    "job_url",
    "labels",
    "create_ticket",
}


def _optional_str(payload: dict, name: str, limit: int, errors: dict) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        errors[name] = f"a string of at most {limit} characters"
        return None
    return value.strip() or None


def parse(payload: dict[str, Any], *, source: str = SOURCE, extra_fields: set[str] = frozenset()) -> list:
    """Pure: the generic body to one normalised event, or InvalidPayload naming each bad field."""
    errors: dict[str, str] = {}
    unknown = sorted(set(payload) - FIELDS - set(extra_fields))
    if unknown:
        errors.update({name: "unknown field" for name in unknown[:20]})
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 300:
        errors["title"] = "required, a string of 1 to 300 characters"
    description = _optional_str(payload, "description", 10_000, errors) or ""
    severity = payload.get("severity", "medium")
    if severity not in set(Severity):
        errors["severity"] = f"one of {', '.join(Severity)}"
    event_type = payload.get("event_type", "alert")
    if event_type not in SENDER_EVENT_KINDS:
        errors["event_type"] = f"one of {SENDER_EVENT_KINDS.one_of()}"
    status = payload.get("status")
    if status is not None and status not in ("firing", "resolved", "info"):
        errors["status"] = "one of firing, resolved, info"
    dedup_key = _optional_str(payload, "dedup_key", 200, errors)
    job_type = _optional_str(payload, "job_type", 60, errors)
    job_url = _optional_str(payload, "job_url", 2000, errors)
    if job_url and (urlsplit(job_url).scheme not in ("http", "https") or not urlsplit(job_url).netloc):
        errors["job_url"] = "an http(s) URL"
    labels = payload.get("labels", {})
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 100 and len(v) <= 500 for k, v in labels.items()
    ):
        errors["labels"] = "an object of string values"
    elif len(labels) > 50:
        errors["labels"] = "at most 50 labels"
    if not isinstance(payload.get("create_ticket", False), bool):
        errors["create_ticket"] = "true or false"
    if errors:
        raise InvalidPayload("Not a valid event.", errors)
    if status is None:  # a problem (an alert, a failed job) fires until it is resolved; a report informs
        status = "firing" if SENDER_EVENT_KINDS[event_type].opens_incident else "info"
    given = dedup_key is not None
    dedup_key = dedup_key or uuid.uuid4().hex  # without a key, every report is its own event
    return [
        NormalisedEvent(
            source=source,
            dedup_key=dedup_key,
            status=EventStatus(status),
            severity=Severity(severity),
            title=title.strip(),
            body=description,
            event_type=event_type,
            labels=labels,
            data={"job_url": job_url, "dedup_key_given": given},
            job_type=job_type,
            incident_key=dedup_key,
        )
    ]
