"""/api/v1/auth: who am I, API keys (admin scope), and user tokens for email + password."""

from __future__ import annotations

from flask import current_app
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import Unauthorized

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required, issue_token
from webapp.api.common import (
    DATETIME,
    NULLABLE_DATETIME,
    body,
    iso,
    json_request,
    limited,
    path_id,
    ref,
    reject_unknown,
    responses,
)
from webapp.errors import InvalidPayload
from webapp.extensions import db, limiter
from webapp.inputs import is_id
from webapp.ip_allowlist import MAX_NETWORKS
from webapp.models import ApiKey, User
from webapp.security import password_matches
from webapp.services.integrations import api_keys
from webapp.tenancy import SCOPES
from webapp.validation import normalise_email


def _key_json(key: ApiKey) -> dict:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes or []),
        "customer_id": key.customer_id,
        "created_by_id": key.created_by_id,
        "status": api_keys.status(key),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
        "last_used_at": iso(key.last_used_at),
        "created_at": iso(key.created_at),
        "allowed_ips": list(key.allowed_ips or []),
    }


def _allowed_ips(payload: dict, errors: dict) -> list[str] | None:
    """The body's allowed_ips, type-checked (a list of texts; null: none); each network is the service's."""
    value = payload.get("allowed_ips")
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        errors["allowed_ips"] = 'a list of networks (CIDR), e.g. ["203.0.113.0/24", "2001:db8::/32"]'
    return value


@bp.get("/auth/verify")
@limited
@api_required("read")
def verify():
    principal = tenancy.current()
    key = principal.api_key
    return {
        "authenticated": True,
        "scope": principal.scope,
        "user": None if principal.user is None else {"id": principal.user.id, "email": principal.user.email},
        "api_key": None if key is None else {"id": key.id, "name": key.name, "prefix": key.prefix},
        "customer_ids": None if principal.customer_ids is None else sorted(principal.customer_ids),
    }


@bp.get("/auth/api-keys")
@limited
@api_required("admin")
def api_key_list():
    query = tenancy.current().scoped(db.select(ApiKey).order_by(ApiKey.id.desc()), ApiKey.customer_id)
    return {"items": [_key_json(key) for key in db.session.scalars(query.limit(500))]}


@bp.post("/auth/api-keys")
@limited
@api_required("admin")
def api_key_create():
    payload = body()
    reject_unknown(payload, {"name", "scopes", "expires_days", "customer_id", "allowed_ips"})
    principal = tenancy.current()
    scopes = payload.get("scopes", ["read"])
    expires_days = payload.get("expires_days")
    customer_id = payload.get("customer_id")
    errors = {}
    allowed_ips = _allowed_ips(payload, errors)
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        errors["scopes"] = f"a list of {', '.join(SCOPES)}"
    if expires_days is not None and (not isinstance(expires_days, int) or isinstance(expires_days, bool)):
        errors["expires_days"] = "a whole number of days, or null"
    if not isinstance(payload.get("name"), str):
        errors["name"] = "required string"
    if customer_id is None and not principal.sees_all:
        customer_id = principal.only_customer_id()
        if customer_id is None:
            errors["customer_id"] = "required: this key serves several customers"
    customer = None
    if customer_id is not None:
        if not is_id(customer_id):
            errors["customer_id"] = "an integer customer id, or null for every customer"
        elif (customer := principal.customer_named(customer_id)) is None:
            errors["customer_id"] = "no such customer for this key"
    if errors:
        raise InvalidPayload("Cannot create this API key.", errors)
    try:
        key, plain = api_keys.create_key(
            name=payload["name"],
            scopes=scopes,
            customer=customer,
            expires_days=expires_days,
            allowed_ips=allowed_ips,
            created_by=principal.user,
        )
    except api_keys.KeyInputError as exc:
        raise InvalidPayload("Cannot create this API key.", {exc.field: exc.message}) from None
    answer = {**_key_json(key), "key": plain, "message": "Store this key now: it is shown only once."}
    db.session.commit()
    return answer, 201


@bp.delete("/auth/api-keys/<int:key_id>")
@limited
@api_required("admin")
def api_key_revoke(key_id: int):
    key = db.get_or_404(ApiKey, key_id, description="No such API key.")
    principal = tenancy.current()
    principal.check_change(key.customer_id)
    api_keys.revoke(key, actor=principal.user)
    answer = _key_json(key)
    db.session.commit()
    return answer, 200


@bp.patch("/auth/api-keys/<int:key_id>")
@limited
@api_required("admin")
def api_key_update(key_id: int):
    """Change what may change of a key: its IP allow-list."""
    key = db.get_or_404(ApiKey, key_id, description="No such API key.")
    principal = tenancy.current()
    principal.check_change(key.customer_id)
    payload = body()
    reject_unknown(payload, {"allowed_ips"})
    errors: dict = {}
    allowed_ips = _allowed_ips(payload, errors)
    if errors:
        raise InvalidPayload("Cannot change this API key.", errors)
    try:
        if "allowed_ips" in payload:
            api_keys.set_allowed_ips(key, allowed_ips, actor=principal.user)
    except api_keys.KeyInputError as exc:
        raise InvalidPayload("Cannot change this API key.", {exc.field: exc.message}) from None
    answer = _key_json(key)
    db.session.commit()
    return answer, 200


def _token_limit() -> str:
    return current_app.config["API_TOKEN_RATE_LIMIT"]


def _email_key() -> str:
    from flask import request

    payload = request.get_json(silent=True)
    email = payload.get("email") if isinstance(payload, dict) else None
    return "token-email:" + (email.strip().lower()[:254] if isinstance(email, str) else "-")


@bp.post("/auth/token")
@limiter.limit(_token_limit, key_func=lambda: "token-ip:" + (get_remote_address() or "-"))
@limiter.limit(_token_limit, key_func=_email_key)
def token():
    payload = body()
    reject_unknown(payload, {"email", "password"})
    email, password = payload.get("email"), payload.get("password")
    errors = {}
    if not isinstance(email, str) or not email.strip():
        errors["email"] = "required string"
    if not isinstance(password, str) or not password:
        errors["password"] = "required string"  # noqa: S105
    if errors:
        raise InvalidPayload("Send email and password.", errors)
    try:
        email = normalise_email(email)
    except ValueError:
        email = email.strip().lower()
    user = db.session.scalar(db.select(User).where(User.email == email))
    if not password_matches(user, password) or not user.is_active:  # unknown emails: as slow as wrong passwords
        raise Unauthorized("Wrong email or password, or the account is deactivated.")
    access_token, ttl = issue_token(user)
    return {"access_token": access_token, "token_type": "bearer", "expires_in": ttl}


API_KEY = {
    "type": "object",
    "required": ["id", "name", "prefix", "scopes", "status"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string"},
        "scopes": {"type": "array", "items": {"enum": list(SCOPES)}},
        "customer_id": {"type": ["integer", "null"]},
        "created_by_id": {"type": ["integer", "null"]},
        "status": {"enum": ["active", "expired", "revoked"]},
        "expires_at": NULLABLE_DATETIME,
        "revoked_at": NULLABLE_DATETIME,
        "last_used_at": NULLABLE_DATETIME,
        "created_at": DATETIME,
        "allowed_ips": {"type": "array", "items": {"type": "string"}},
    },
}
ALLOWED_IPS = {
    "type": ["array", "null"],
    "items": {"type": "string"},
    "maxItems": MAX_NETWORKS,
    "description": "networks (CIDR, IPv4 or IPv6) the key is accepted from; empty or null: any address",
}

OPENAPI_SCHEMAS = {
    "ApiKey": API_KEY,
    "NewApiKey": {
        "allOf": [
            {"$ref": "#/components/schemas/ApiKey"},
            {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}},
        ]
    },
    "ApiKeyCreate": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 120},
            "scopes": {"type": "array", "items": {"enum": list(SCOPES)}, "minItems": 1},
            "expires_days": {"type": ["integer", "null"], "minimum": 1, "maximum": api_keys.MAX_EXPIRES_DAYS},
            "customer_id": {"type": ["integer", "null"]},
            "allowed_ips": ALLOWED_IPS,
        },
    },
    "ApiKeyUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"allowed_ips": ALLOWED_IPS},
    },
    "Verify": {
        "type": "object",
        "required": ["authenticated", "scope"],
        "properties": {
            "authenticated": {"type": "boolean"},
            "scope": {"enum": list(SCOPES)},
            "user": {"type": ["object", "null"]},
            "api_key": {"type": ["object", "null"]},
            "customer_ids": {"type": ["array", "null"], "items": {"type": "integer"}},
        },
    },
    "TokenRequest": {
        "type": "object",
        "required": ["email", "password"],
        "additionalProperties": False,
        "properties": {"email": {"type": "string"}, "password": {"type": "string"}},
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "bearer"},
            "expires_in": {"type": "integer"},
        },
    },
}

OPENAPI_PATHS = {
    "/api/v1/auth/verify": {
        "get": {
            "tags": ["auth"],
            "summary": "Who this key or token is",
            "responses": responses(200, ref("Verify")),
        }
    },
    "/api/v1/auth/api-keys": {
        "get": {
            "tags": ["auth"],
            "summary": "List API keys (admin scope)",
            "responses": responses(
                200,
                {"type": "object", "properties": {"items": {"type": "array", "items": ref("ApiKey")}}},
                403,
            ),
        },
        "post": {
            "tags": ["auth"],
            "summary": "Create an API key (admin scope); the key is in the answer, once",
            "requestBody": json_request(ref("ApiKeyCreate")),
            "responses": responses(201, ref("NewApiKey"), 403, 413, 415, 422, description="Created"),
        },
    },
    "/api/v1/auth/api-keys/{key_id}": {
        "parameters": [path_id("key_id")],
        "delete": {
            "tags": ["auth"],
            "summary": "Revoke an API key (admin scope)",
            "responses": responses(200, ref("ApiKey"), 403, 404),
        },
        "patch": {
            "tags": ["auth"],
            "summary": "Change an API key's IP allow-list (admin scope)",
            "requestBody": json_request(ref("ApiKeyUpdate")),
            "responses": responses(200, ref("ApiKey"), 403, 404, 413, 415, 422),
        },
    },
    "/api/v1/auth/token": {
        "post": {
            "tags": ["auth"],
            "summary": "Trade a user's email and password for a short-lived bearer token",
            "security": [],
            "requestBody": json_request(ref("TokenRequest")),
            "responses": responses(200, ref("Token"), 413, 415, 422),
        }
    },
}
