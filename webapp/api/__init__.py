"""The JSON API at /api/v1: API keys or short-lived tokens, customer-scoped, JSON errors only."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Each module registers its routes and declares its OPENAPI_PATHS / OPENAPI_SCHEMAS.
from webapp.api import (  # noqa: E402,F401
    auth,
    events,
    incidents,
    notifications,
    openapi,
    preferences,
    reports,
    routing,
    smtp,
    tickets,
    users,
)
