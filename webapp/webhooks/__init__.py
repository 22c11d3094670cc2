"""Incoming webhooks at /api/v1/webhooks/<source>: authenticate, read, parse (pure), ingest."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, request
from sqlalchemy.exc import SQLAlchemyError

from webapp import metrics
from webapp.errors import database_unreachable, json_error
from webapp.extensions import db
from webapp.models import SOURCE_KINDS, WebhookSource, utcnow
from webapp.security import require_address
from webapp.services.events import ingest

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")
log = logging.getLogger(__name__)


def store(items: list, *, follow_up: dict | None = None, extra: dict | None = None) -> dict[str, Any]:
    """Store parsed items and commit (one transaction, a fixed few statements): the outbox hands one routing job
    to the queue, which pages, fans out and runs the source's `follow_up` (services.inbound.follow_ups).
    Returns the answer."""
    answer = {**ingest.accept(items, follow_up=follow_up), **(extra or {})}
    db.session.commit()
    if answer["duplicates"] and not answer["new_events"]:
        g.webhook_outcome = "duplicate"  # every item was a redelivery
    return answer


@bp.after_request
def count_webhook(response):
    """opsrelay_webhooks_received: one per request, by source, outcome and status code."""
    source = (request.endpoint or "unknown").rpartition(".")[2]
    outcome = "refused" if response.status_code >= 400 else g.get("webhook_outcome", "accepted")
    metrics.webhooks.labels(source=source, outcome=outcome, status=str(response.status_code)).inc()
    return response


def unauthorized(message: str, scheme: str = "Signature"):
    """401 JSON with a WWW-Authenticate header naming what to send."""
    body, status = json_error(401, "unauthorized", message)
    return body, status, {"WWW-Authenticate": f'{scheme} realm="opsrelay-webhooks"'}


def admit(source: WebhookSource) -> WebhookSource:
    """The source, if the request comes from a network on its allow-list (403 otherwise): checked once the
    sender is known, before anything is stored or remembered."""
    require_address(source.allowed_ips or [], guard="webhook_source", what="this source")
    return source


@bp.get("/test")
def webhook_test():
    """The seed's liveness check for senders: no auth, nothing stored."""
    return {
        "status": "ok",
        "message": "OpsRelay webhooks are alive.",
        "sources": list(SOURCE_KINDS.names),
        "time": utcnow().isoformat(),
    }


def webhook_doc(summary: str, *, security: list, headers: list[tuple[str, str]] = (), ok: dict | None = None) -> dict:
    """The OpenAPI operation of one incoming webhook (signature headers are parameters)."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    any_object = {"application/json": {"schema": {"type": "object"}}}
    responses = {
        "200": {
            "description": "Stored (or a redelivery: counted under duplicates); routing: queued -- who is paged is "
            "decided by a job right after (see the event's notifications, or the routing preview beforehand)",
            "content": ok or any_object,
        },
        **{
            str(code): {"description": text, "content": error}
            for code, text in (
                (400, "Malformed JSON"),
                (401, "Missing, wrong or stale signature or token"),
                (403, "From an address the source's (or the token's) IP allow-list does not hold"),
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


# Each source kind's route module (webapp/webhooks/<kind>.py, as the registry names it) and Twilio's callbacks
# register their routes on bp.
for _module in (*SOURCE_KINDS.names, "twilio"):
    importlib.import_module(f"{__name__}.{_module}")


def retry_once_on_lost_database(view: Callable) -> Callable:
    """A sender's request that met a dropped database connection (a restart) is rolled back -- nothing
    half-written -- and run once more on a fresh connection; if that fails too, the error handler answers
    503 with Retry-After (webapp.errors.handle_database_error), never a 500."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except SQLAlchemyError as exc:
            if not database_unreachable(exc):
                raise
            log.warning("webhook met a lost database connection (%s); retrying once", type(exc).__name__)
            with contextlib.suppress(SQLAlchemyError):
                db.session.rollback()
            db.session.remove()
            time.sleep(0.5)  # a restart's first moments refuse connections
        return view(*args, **kwargs)

    return wrapped


@bp.record_once
def _wrap_views(state) -> None:
    """Runs after the routes above were added to the app: every webhook view retries once."""
    for endpoint, view in list(state.app.view_functions.items()):
        if endpoint.startswith(f"{bp.name}."):
            state.app.view_functions[endpoint] = retry_once_on_lost_database(view)
