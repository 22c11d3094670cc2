"""Domain exceptions and the error handlers: JSON under /api/, pages elsewhere."""

from __future__ import annotations

import json
import logging
import uuid

from flask import Flask, g, render_template, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import BadRequest, HTTPException

from webapp.extensions import db
from webapp.inputs import InvalidQuery

log = logging.getLogger(__name__)


class InvalidPayload(Exception):
    """A request body that is well-formed JSON but not what the endpoint takes (422)."""

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


def request_id() -> str:
    if "request_id" not in g:
        g.request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
    return g.request_id


def assign_request_id() -> None:
    request_id()


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, code: str, message: str, **extra) -> tuple[dict, int]:
    body = {"error": {"code": code, "message": message, **extra}, "request_id": request_id()}
    return body, status


def _code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def handle_http_error(exc: HTTPException):
    if wants_json():
        body, status = json_error(exc.code or 500, _code(exc), exc.description or exc.name)
        response = exc.get_response()
        response.set_data(json.dumps(body))
        response.content_type = "application/json"
        response.status_code = status
        return response
    return render_template("errors/http.html", error=exc), exc.code


def handle_invalid_payload(exc: InvalidPayload):
    return json_error(422, "invalid_payload", exc.message, fields=exc.fields)


def handle_invalid_query(exc: InvalidQuery):
    if wants_json():
        return json_error(400, "invalid_query", exc.message, fields=exc.fields)
    return render_template("errors/http.html", error=BadRequest(exc.message)), 400


RETRY_AFTER_SECONDS = 5  # what a 503 asks a sender to wait while the database is unreachable


def database_unreachable(exc: BaseException) -> bool:
    """A lost or refused database connection (a restart, a failover), not a bad statement."""
    if isinstance(exc, sa_exc.DisconnectionError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return False


def handle_database_error(exc: sa_exc.SQLAlchemyError):
    """The database went away mid-request: rolled back (nothing half-written), 503 with Retry-After."""
    if not database_unreachable(exc):
        return handle_unexpected(exc)
    try:
        db.session.rollback()
    except sa_exc.SQLAlchemyError:
        db.session.remove()
    log.warning("database unreachable: %s", type(getattr(exc, "orig", exc)).__name__, extra={"path": request.path})
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if wants_json():
        body, status = json_error(503, "database_unavailable", "The database is briefly unreachable; retry shortly.")
        return body, status, headers
    return render_template("errors/500.html"), 503, headers


def handle_unexpected(exc: Exception):
    db.session.rollback()
    log.exception("unhandled error", extra={"request_id": request_id(), "path": request.path})
    if wants_json():
        return json_error(500, "internal_error", "Something went wrong on our side; it has been logged.")
    return render_template("errors/500.html"), 500


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InvalidPayload, handle_invalid_payload)
    app.register_error_handler(InvalidQuery, handle_invalid_query)
    app.register_error_handler(sa_exc.SQLAlchemyError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
