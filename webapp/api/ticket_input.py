"""Reading the tickets API's JSON fields, every problem reported at once (422)."""

from __future__ import annotations

from webapp.errors import InvalidPayload
from webapp.models import Priority, TicketStatus


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
