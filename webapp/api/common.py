"""Helpers shared by the API modules: JSON bodies, field checks, keyset pages, OpenAPI fragments."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app, request

from webapp.errors import InvalidPayload
from webapp.extensions import limiter
from webapp.inputs import InvalidQuery, is_id, query_int, read_json_object, utc_time
from webapp.paging import keyset_page

MAX_LIMIT = 200
CURSOR = "the next_cursor of a page this API gave out"


def body() -> dict[str, Any]:
    """The JSON object sent (415 another content type, 413 too large, 400 malformed)."""
    return read_json_object()


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def api_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def limited(view: Callable) -> Callable:
    """The per-key API rate limit (API_RATE_LIMIT) on a view."""
    from webapp.api.access import rate_key

    return limiter.limit(api_limit, key_func=rate_key)(view)


def reject_unknown(payload: dict, allowed: set[str]) -> None:
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise InvalidPayload("Unknown fields.", {name: "unknown field" for name in unknown[:20]})


def page_limit() -> int:
    return query_int("limit", maximum=MAX_LIMIT) or 50


def _cursor() -> tuple[datetime, int] | None:
    """The bound a `next_cursor` carries: (the sort column's time, the row id)."""
    raw = request.args.get("cursor")
    if not raw:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        if not isinstance(value, list) or len(value) != 2 or not is_id(value[1]):  # ids fit the database
            raise ValueError
        return utc_time(value[0]), value[1]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidQuery("cursor", CURSOR) from None


def _encode_cursor(bound: tuple[datetime, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps([bound[0].isoformat(), bound[1]]).encode()).decode().rstrip("=")


def keyset_answer(query, column, id_column, serialise: Callable[[Any], dict], *, descending: bool = True) -> dict:
    """One page of a list operation, ordered by (the time `column`, id), continued from ?cursor= (the previous
    page's next_cursor), ?limit= rows long; the one algorithm of webapp.paging."""
    cursor = _cursor()
    bound = {} if cursor is None else ({"before": cursor} if descending else {"after": cursor})
    page = keyset_page(query, column, id_column, per_page=page_limit(), descending=descending, **bound)
    following = page.before if descending else page.after
    return {
        "items": [serialise(row) for row in page.items],
        "next_cursor": _encode_cursor(following) if following is not None else None,
    }


# --- OpenAPI fragments -------------------------------------------------------------------------

ERROR_REF = {"$ref": "#/components/schemas/Error"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR_TEXT = {
    400: "Malformed request (bad JSON or query parameter)",
    401: "Missing or invalid credentials",
    403: "The key's scope does not allow this",
    404: "No such object for this key",
    409: "Conflicts with an existing object",
    413: "Body too large",
    415: "Not application/json",
    422: "Invalid fields (named in error.fields)",
    429: "Rate limit reached (see Retry-After)",
}


def responses(ok: int, schema: dict | None, *errors: int, description: str = "OK") -> dict:
    out: dict = {}
    if schema is None:
        out[str(ok)] = {"description": description}
    else:
        out[str(ok)] = {"description": description, "content": {"application/json": {"schema": schema}}}
    for code in sorted({400, 401, 429, *errors}):
        out[str(code)] = {"description": ERROR_TEXT[code], "content": {"application/json": {"schema": ERROR_REF}}}
    return out


def json_request(schema: dict, *, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}  # else 404


def query_param(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


PAGE_PARAMS = [
    query_param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "page size (default 50)"),
    query_param("cursor", {"type": "string"}, "next_cursor of the previous page"),
]
DATETIME = {"type": "string", "format": "date-time"}
NULLABLE_DATETIME = {"type": ["string", "null"], "format": "date-time"}


def page_of(item: dict) -> dict:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}},
    }
