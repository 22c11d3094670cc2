"""/api/v1/openapi.json (OpenAPI 3.1), built from the OPENAPI_PATHS and OPENAPI_SCHEMAS of every
imported webapp.api.* and webapp.webhooks.* module; /api/docs shows it with Swagger UI from /static."""

from __future__ import annotations

import pkgutil
import sys

from flask import render_template
from flask_login import login_required

from webapp.api import bp

PACKAGES = ("webapp.api", "webapp.webhooks")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "request_id": {"type": "string"},
    },
}


def collect() -> tuple[dict, dict]:
    """(paths, schemas) from every imported submodule of the API and webhook packages."""
    paths: dict = {}
    schemas: dict = {"Error": ERROR_SCHEMA}
    for package_name in PACKAGES:
        package = sys.modules.get(package_name)
        if package is None:
            continue
        names = [package_name] + [
            f"{package_name}.{info.name}"
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name)
        ]
        for name in names:
            module = sys.modules.get(name)
            if module is None:
                continue
            paths.update(getattr(module, "OPENAPI_PATHS", {}))
            schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return dict(sorted(paths.items())), dict(sorted(schemas.items()))


def document() -> dict:
    paths, schemas = collect()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OpsRelay API",
            "version": "1",
            "description": (
                "Send an API key as `X-API-Key: <key>` (safest), `Authorization: Bearer <key or token>`, or the "
                "`api_key` query parameter (accepted for compatibility; URLs end up in logs, so prefer the header). "
                'Every error is JSON: `{"error": {"code", "message", "fields"?}, "request_id"}`. '
                "Rate limits answer 429 with Retry-After."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKeyHeader": []}, {"Bearer": []}, {"ApiKeyQuery": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
                "Bearer": {"type": "http", "scheme": "bearer", "description": "an API key or a /auth/token token"},
                "AlertToken": {"type": "http", "scheme": "bearer", "description": "ALERT_WEBHOOK_TOKEN"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    return document()


@bp.record_once
def _docs_route(state) -> None:
    state.app.add_url_rule("/api/docs", "api_docs", api_docs)


# Swagger UI's stylesheet draws its icons as data: SVG images; scripts stay 'self' only.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)


@login_required
def api_docs():
    return render_template("api/docs.html"), 200, {"Content-Security-Policy": DOCS_CSP}


OPENAPI_PATHS = {
    "/api/v1/openapi.json": {
        "get": {
            "tags": ["docs"],
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
}
