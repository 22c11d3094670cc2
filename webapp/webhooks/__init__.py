"""Incoming webhooks at /api/v1/webhooks/<source>: authenticate, read, parse (pure), ingest."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object: 415 for another content type, 400 for malformed JSON."""
    if not request.is_json:
        raise UnsupportedMediaType(f"Send the body as application/json (got {request.mimetype or 'no content type'}).")
    raw = request.get_data(cache=True)  # 413 above MAX_CONTENT_LENGTH, before any parsing
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("The body must be a JSON object.")
    if _contains_nul(payload):
        raise BadRequest("The body contains a NUL character (\\u0000), which no field accepts.")
    return payload


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


from webapp.webhooks import alertmanager  # noqa: E402,F401  (registers routes)
