"""Reading what a request sends: JSON bodies, query parameters and row ids (every blueprint uses these; none
owns them).

- `raw_json_body()` / `read_json_object()`: 415 for another content type, 413 above MAX_CONTENT_LENGTH
  (before any parsing), 400 for malformed JSON, a non-object, or a NUL character.
- Query parameters of the JSON API: `query_int`, `query_choice`, `query_choices`, `query_time`, `query_bool`.
  An absent or empty parameter is None; a bad one is one mistake with one answer everywhere: InvalidQuery,
  400 with the parameter named in `error.fields`.
- Query parameters of the pages (`arg_id`): lenient, a bad value is as if absent (a page re-renders).
- Row ids: `<int:...>` in every URL is `RowIdConverter`; a JSON body's id is checked with `is_id()`.
  Both keep ids within the id columns' range, so a huge number is "no such row", never a driver error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
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


class InvalidQuery(Exception):
    """A query parameter the endpoint cannot use (400, the parameter named)."""

    def __init__(self, name: str, expected: str):
        super().__init__(f"Query parameter {name!r} must be {expected}.")
        self.message = str(self)
        self.fields = {name: expected}


def _raw(name: str) -> str | None:
    raw = request.args.get(name)
    return None if raw is None or raw == "" else raw


def query_int(name: str, *, minimum: int = 1, maximum: int = MAX_ROW_ID) -> int | None:
    raw = _raw(name)
    if raw is None:
        return None
    if not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise InvalidQuery(name, f"a whole number from {minimum} to {maximum}")
    return int(raw)


def query_id(name: str, *, required: bool = False) -> int | None:
    """A row id: digits, or InvalidQuery; past the id columns' range it names no row (0), like RowIdConverter."""
    raw = _raw(name)
    if raw is None:
        if required:
            raise InvalidQuery(name, "given: a row id")
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidQuery(name, "a row id (a whole number from 1)")
    return int(raw) if int(raw) <= MAX_ROW_ID else 0


def query_choice(name: str, choices: Iterable[str]) -> str | None:
    raw, allowed = _raw(name), [str(c) for c in choices]
    if raw is None:
        return None
    if raw not in allowed:
        raise InvalidQuery(name, f"one of {', '.join(allowed)}")
    return raw


def query_choices(name: str, choices: Iterable[str]) -> list[str] | None:
    """A comma-separated list of choices (`?status=open,pending`)."""
    raw, allowed = _raw(name), [str(c) for c in choices]
    if raw is None:
        return None
    values = [value.strip() for value in raw.split(",") if value.strip()]
    if not values or any(value not in allowed for value in values):
        raise InvalidQuery(name, f"one or more of {', '.join(allowed)} (comma-separated)")
    return list(dict.fromkeys(values))


def utc_time(text: str) -> datetime:
    """An ISO 8601 date-time as an aware UTC datetime (without a zone it is UTC); ValueError when it is not one
    or lies outside the years 1-9999 once in UTC (0001-01-01T00:00:00+23:59)."""
    if not isinstance(text, str):
        raise ValueError("not text")
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("out of range") from None


def query_time(name: str) -> datetime | None:
    """An ISO 8601 date-time; without a zone it is UTC."""
    raw = _raw(name)
    if raw is None:
        return None
    try:
        return utc_time(raw)
    except ValueError:
        raise InvalidQuery(name, "an ISO 8601 date-time, e.g. 2026-04-01T12:00:00Z") from None


def query_bool(name: str) -> bool | None:
    raw = _raw(name)
    if raw is None:
        return None
    if raw.lower() not in {"true", "false", "1", "0"}:
        raise InvalidQuery(name, "true or false")
    return raw.lower() in {"true", "1"}


def arg_id(name: str) -> int | None:
    """A row id in a page's query string (?after=, ?watch=); anything else is as if absent."""
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_ROW_ID else None
