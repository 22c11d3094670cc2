"""The JSON API at /api/v1: API keys or short-lived tokens, customer-scoped, JSON errors only."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.routing import IntegerConverter

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<id:name>`: digits as a row id. One past any column's range names no row (0), so the view
    answers 404 instead of overflowing the database driver; a converter refusal would be a 405."""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        return number if 0 < number <= MAX_ID else 0


@bp.record_once
def _register_id_converter(state) -> None:  # before any route of the blueprint is added
    state.app.url_map.converters["id"] = IdConverter


# Each module registers its routes and declares its OPENAPI_PATHS / OPENAPI_SCHEMAS.
from webapp.api import auth, events, notifications, openapi, preferences, smtp  # noqa: E402,F401
