"""Incoming webhooks at /api/v1/webhooks/<source>: authenticate, read, parse (pure), ingest."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")

# source name -> pure parser (payload dict -> list[NormalisedEvent]); the routing preview uses the same ones.
PARSERS: dict[str, Callable[[dict[str, Any]], list]] = {}


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object: 415 for another content type, 400 for malformed JSON."""
    if not request.is_json:
        raise UnsupportedMediaType(f"Send the body as application/json (got {request.mimetype or 'no content type'}).")
    raw = request.get_data(cache=True)  # 413 above MAX_CONTENT_LENGTH, before any parsing
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("The body is nested too deeply to be a webhook payload.") from None
    if not isinstance(payload, dict):
        raise BadRequest("The body must be a JSON object.")
    if _contains_nul(payload):
        raise BadRequest("The body contains a NUL character (\\u0000), which no field accepts.")
    return payload


def _contains_nul(payload: Any) -> bool:
    stack = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


from webapp.webhooks import alertmanager, twilio  # noqa: E402,F401  (registers routes)
