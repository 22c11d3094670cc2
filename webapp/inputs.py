"""Reading what a request sends: JSON bodies and row ids (every blueprint uses these; none owns them).

- `raw_json_body()` / `read_json_object()`: 415 for another content type, 413 above MAX_CONTENT_LENGTH
  (before any parsing), 400 for malformed JSON, a non-object, or a NUL character.
- Row ids: `<int:...>` in every URL is `RowIdConverter`; a JSON body's id is checked with `is_id()`.
  Both keep ids within the id columns' range, so a huge number is "no such row", never a driver error.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.routing import IntegerConverter

MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every URL: digits past any id column's range name no row (0), so the view answers
    404 instead of the database driver overflowing (a 500); refusing in the converter would be a 405."""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        return number if number <= MAX_ROW_ID else 0


def is_id(value) -> bool:
    """A row id as a JSON body may give it: an integer (not a boolean) within the id columns' range."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROW_ID


def raw_json_body() -> bytes:
    """The raw body, for signatures: 415 for another content type, 413 above MAX_CONTENT_LENGTH (unparsed)."""
    if not request.is_json:
        raise UnsupportedMediaType(f"Send the body as application/json (got {request.mimetype or 'no content type'}).")
    return request.get_data(cache=True)


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object: 415 for another content type, 400 for malformed JSON."""
    raw = raw_json_body()  # 413 above MAX_CONTENT_LENGTH, before any parsing
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
