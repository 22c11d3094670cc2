"""Incoming webhooks at /api/v1/webhooks/<source>: authenticate, read, parse (pure), ingest."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from webapp.errors import json_error
from webapp.extensions import db
from webapp.models import NotificationStatus, utcnow
from webapp.services.delivery import attempts
from webapp.services.events import ingest

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")

# source name -> pure parser (payload dict -> list[NormalisedEvent]); the routing preview uses the same ones.
PARSERS: dict[str, Callable[[dict[str, Any]], list]] = {}


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


def store(items: list, *, after: Callable | None = None, extra: dict | None = None) -> dict[str, Any]:
    """Ingest parsed items (one transaction), run `after(result)` for source-specific work (tickets,
    timelines) inside it, commit, then hand the new notifications to the queue. Returns the answer."""
    result = ingest.ingest(items)
    more = after(result) if after is not None else {}
    # Read what we answer before the commit expires the rows (no query per row afterwards).
    pending = [n.id for n in result.notifications if n.status == NotificationStatus.PENDING]
    decisions = Counter(
        "queued" if n.status == NotificationStatus.PENDING else str(n.status) for n in result.notifications
    )
    answer = {
        "status": "accepted",
        "new_events": len(result.events),
        "duplicates": result.duplicates,
        "event_ids": [event.id for event in result.events],
        "notifications": dict(decisions),
        **(extra or {}),
        **(more or {}),
    }
    db.session.commit()  # the outbox: rows first, then the queue
    attempts.enqueue(pending, mark_queued=False)  # stays pending until claimed: one transaction per alert
    return answer


def unauthorized(message: str, scheme: str = "Signature"):
    """401 JSON with a WWW-Authenticate header naming what to send."""
    body, status = json_error(401, "unauthorized", message)
    return body, status, {"WWW-Authenticate": f'{scheme} realm="opsrelay-webhooks"'}


@bp.get("/test")
def webhook_test():
    """The seed's liveness check for senders: no auth, nothing stored."""
    return {
        "status": "ok",
        "message": "OpsRelay webhooks are alive.",
        "sources": sorted(PARSERS),
        "time": utcnow().isoformat(),
    }


def webhook_doc(summary: str, *, security: list, headers: list[tuple[str, str]] = (), ok: dict | None = None) -> dict:
    """The OpenAPI operation of one incoming webhook (signature headers are parameters)."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    any_object = {"application/json": {"schema": {"type": "object"}}}
    responses = {
        "200": {"description": "Stored (or a redelivery: counted under duplicates)", "content": ok or any_object},
        **{
            str(code): {"description": text, "content": error}
            for code, text in (
                (400, "Malformed JSON"),
                (401, "Missing, wrong or stale signature or token"),
                (409, "A replayed signed request"),
                (413, "Body too large"),
                (415, "Not application/json"),
                (422, "Not this source's payload shape (fields named)"),
            )
        },
    }
    return {
        "post": {
            "tags": ["webhooks"],
            "summary": summary,
            "security": security,
            "parameters": [
                {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": text}
                for name, text in headers
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {**responses, "202": {"description": "Accepted and ignored", "content": any_object}},
        }
    }


OPENAPI_PATHS = {
    "/api/v1/webhooks/test": {
        "get": {
            "tags": ["webhooks"],
            "summary": "Is the webhook endpoint alive?",
            "security": [],
            "responses": {
                "200": {"description": "Alive", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
}


from webapp.webhooks import alertmanager, generic, github, pagerduty, twilio  # noqa: E402,F401  (registers routes)
