"""Prometheus Alertmanager (webhook payload version 4): the pure parser."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from webapp.errors import InvalidPayload
from webapp.inputs import utc_time
from webapp.models import EventStatus, Severity
from webapp.sources.normalised import NormalisedEvent

SOURCE = "alertmanager"


# Group fields kept on every event of the group (links back: externalURL; what was left out: truncatedAlerts).
KEPT_GROUP_FIELDS = (
    "receiver",
    "status",
    "groupKey",
    "externalURL",
    "truncatedAlerts",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "version",
)


SEVERITY_LABELS = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "emergency": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "minor": Severity.LOW,
    "info": Severity.INFO,
    "none": Severity.INFO,
}


def _string_map(value: Any, where: str, errors: dict[str, str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        errors[where] = "must be an object of string values"
        return {}
    return value


def _timestamp(value: Any, where: str, errors: dict[str, str]) -> datetime | None:
    """RFC 3339; Alertmanager's zero time (year 1) means 'not set'."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        errors[where] = "must be an RFC 3339 timestamp string"
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.year <= 1:  # Go's zero time: not set
            return None
        return utc_time(value)
    except ValueError:
        errors[where] = f"{value!r} is not an RFC 3339 timestamp"
        return None


def _fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint is a hash of the label set; we compute our own when it is absent."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def parse(payload: dict[str, Any]) -> list[NormalisedEvent]:
    """Pure: an Alertmanager webhook body to normalised events, or InvalidPayload naming each bad field."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise InvalidPayload(
            "Not an Alertmanager payload: 'alerts' must be a non-empty list.", {"alerts": "required, non-empty list"}
        )
    errors: dict[str, str] = {}
    common = {("groupStatus" if key == "status" else key): payload[key] for key in KEPT_GROUP_FIELDS if key in payload}
    items = []
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            errors[where] = "must be an object"
            continue
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            errors[f"{where}.status"] = "must be 'firing' or 'resolved'"
        if not isinstance(alert.get("labels"), dict):
            errors[f"{where}.labels"] = "required object of string values"
        labels = _string_map(alert.get("labels"), f"{where}.labels", errors)
        annotations = _string_map(alert.get("annotations"), f"{where}.annotations", errors)
        starts_at = _timestamp(alert.get("startsAt"), f"{where}.startsAt", errors)
        ends_at = _timestamp(alert.get("endsAt"), f"{where}.endsAt", errors)
        fingerprint = alert.get("fingerprint")
        if fingerprint is not None and (not isinstance(fingerprint, str) or not 0 < len(fingerprint) <= 64):
            errors[f"{where}.fingerprint"] = "must be a string of at most 64 characters"
        if any(key.startswith(where) for key in errors):
            continue
        fingerprint = fingerprint or _fingerprint(labels)
        # One firing of one alert: a resend keeps startsAt, a new firing after resolution does not. Whole
        # seconds: Alertmanager does not write startsAt with the same precision in firing and resolved bodies.
        dedup_key = f"{fingerprint}@{starts_at.replace(microsecond=0).isoformat() if starts_at else '-'}"
        title = labels.get("alertname") or annotations.get("summary") or "Alertmanager alert"
        items.append(
            NormalisedEvent(
                source=SOURCE,
                dedup_key=dedup_key,
                status=EventStatus(status),
                severity=SEVERITY_LABELS.get(labels.get("severity", "").lower(), Severity.INFO),
                title=title[:300],
                body=annotations.get("description") or annotations.get("summary", ""),
                labels=labels,
                data={
                    "annotations": annotations,
                    "fingerprint": fingerprint,
                    "generatorURL": alert.get("generatorURL") if isinstance(alert.get("generatorURL"), str) else None,
                    **common,
                },
                starts_at=starts_at,
                ends_at=ends_at,
                incident_key=fingerprint,  # the incident: every firing of this label set until it resolves
            )
        )
    if errors:
        raise InvalidPayload("Not a valid Alertmanager payload.", errors)
    return items
