"""Reading the tickets API's input: query filters and JSON fields, every problem reported at once (422)."""

from __future__ import annotations

from datetime import datetime

from flask import request

from webapp.errors import InvalidPayload
from webapp.models import Priority, TicketStatus


def enum_list(name: str, enum_cls) -> list | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    values = [v.strip() for v in raw.split(",") if v.strip()]
    allowed = [m.value for m in enum_cls]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise InvalidPayload("Invalid filter.", {name: f"use one or more of {', '.join(allowed)} (comma-separated)"})
    return [enum_cls(v) for v in values]


def int_arg(name: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) < minimum or (maximum is not None and int(raw) > maximum):
        upper = f" and at most {maximum}" if maximum else ""
        raise InvalidPayload("Invalid parameter.", {name: f"a whole number of at least {minimum}{upper}"})
    return int(raw)


def time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidPayload("Invalid parameter.", {name: "an ISO 8601 time with a zone, e.g. 2026-04-01T12:00:00Z"})
    return value


def bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in {"true", "false", "1", "0"}:
        raise InvalidPayload("Invalid parameter.", {name: "true or false"})
    return raw.lower() in {"true", "1"}


def check_fields(payload: dict, allowed: set[str], *, required: set[str]) -> dict:
    """Validate the body's fields: every problem is reported at once, nothing changes on any."""
    errors: dict[str, str] = {}
    for name in sorted(set(payload) - allowed):
        errors[name] = "unknown field"
    for name in sorted(required - set(payload)):
        errors[name] = "required"
    clean: dict = {}
    if "title" in payload:
        title = payload["title"]
        if not isinstance(title, str) or not title.strip() or len(title.strip()) > 200:
            errors["title"] = "a non-empty string of at most 200 characters"
        else:
            clean["title"] = title.strip()
    if "description" in payload:
        text = payload["description"]
        if not isinstance(text, str) or len(text) > 20_000:
            errors["description"] = "a string of at most 20000 characters"
        else:
            clean["description"] = text
    for name, enum_cls in (("priority", Priority), ("status", TicketStatus)):
        if name in payload:
            try:
                clean[name] = enum_cls(payload[name])
            except (ValueError, TypeError):
                errors[name] = f"one of {', '.join(m.value for m in enum_cls)}"
    if "assignee_id" in payload:
        value = payload["assignee_id"]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            errors["assignee_id"] = "a user id, or null to unassign"
        else:
            clean["assignee_id"] = value
    if errors:
        raise InvalidPayload("The ticket is not valid; see fields.", errors)
    return clean
