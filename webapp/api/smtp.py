"""/api/v1/smtp: per-customer SMTP configs (password write-only) and the test email."""

from __future__ import annotations

from flask import abort, g

from webapp.api import bp
from webapp.api.access import api_required
from webapp.api.common import (
    DATETIME,
    NULLABLE_DATETIME,
    body,
    iso,
    json_request,
    limited,
    path_id,
    query_param,
    ref,
    reject_unknown,
    responses,
)
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.inputs import is_id, query_int
from webapp.models import Customer, SmtpConfig, SmtpSecurity, utcnow
from webapp.security import encrypt_secret
from webapp.services import audit
from webapp.services.delivery import test_sends
from webapp.validation import normalise_email

MASK = "********"
FIELDS = {
    "customer_id",
    "name",
    "host",
    "port",
    "security",
    "use_tls",
    "use_ssl",
    "username",
    "password",
    "from_email",
    "from_name",
    "reply_to",
    "timeout_seconds",
    "enabled",
}


def smtp_json(config: SmtpConfig) -> dict:
    return {
        "id": config.id,
        "customer_id": config.customer_id,
        "name": config.name,
        "host": config.host,
        "port": config.port,
        "security": str(config.security),
        "username": config.username,
        "password": MASK if config.password_encrypted else None,
        "from_email": config.from_email,
        "from_name": config.from_name,
        "reply_to": config.reply_to,
        "timeout_seconds": config.timeout_seconds,
        "enabled": config.enabled,
        "last_test_at": iso(config.last_test_at),
        "last_test_ok": config.last_test_ok,
        "last_test_message": config.last_test_message,
        "created_at": iso(config.created_at),
        "updated_at": iso(config.updated_at),
    }


def _visible(config_id: int) -> SmtpConfig:
    config = db.session.get(SmtpConfig, config_id)
    if config is None or not g.principal.sees_customer(config.customer_id):
        abort(404, description="No such SMTP config for this key.")
    return config


def _text(payload, name, limit, errors, *, required=False, email=False):
    value = payload.get(name)
    if value is None or value == "":
        if required:
            errors[name] = "required"
        return None
    if not isinstance(value, str) or len(value) > limit:
        errors[name] = f"a string of at most {limit} characters"
        return None
    if email:
        try:
            return normalise_email(value)
        except ValueError as exc:
            errors[name] = str(exc)
            return None
    return value.strip()


def _apply(config: SmtpConfig, payload: dict, *, partial: bool) -> dict:
    """Validate `payload` and set it on `config`; InvalidPayload names every bad field. Returns changes."""
    reject_unknown(payload, FIELDS)
    errors: dict[str, str] = {}
    values: dict = {}
    present = (lambda name: name in payload) if partial else (lambda name: True)
    if not partial or "customer_id" in payload:
        customer_id = payload.get("customer_id")
        if not is_id(customer_id):
            errors["customer_id"] = "required integer"
        elif db.session.get(Customer, customer_id) is None or not g.principal.sees_customer(customer_id):
            errors["customer_id"] = "no such customer for this key"
        else:
            values["customer_id"] = customer_id
    for name, limit, required, email in (
        ("host", 255, True, False),
        ("from_email", 254, True, True),
        ("name", 120, False, False),
        ("username", 255, False, False),
        ("from_name", 120, False, False),
        ("reply_to", 254, False, True),
    ):
        if present(name):
            value = _text(payload, name, limit, errors, required=required, email=email)
            if name not in errors:
                values[name] = value if value is not None or name != "name" else "Default"
    for name, low, high, default in (("port", 1, 65535, 587), ("timeout_seconds", 1, 300, 30)):
        if present(name):
            value = payload.get(name, default)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                errors[name] = f"a whole number from {low} to {high}"
            else:
                values[name] = value
    if present("enabled"):
        if not isinstance(payload.get("enabled", True), bool):
            errors["enabled"] = "true or false"
        else:
            values["enabled"] = payload.get("enabled", True)
    security = payload.get("security")
    if security is None and ("use_tls" in payload or "use_ssl" in payload):  # the fifth seed's booleans
        tls = "starttls" if payload.get("use_tls") is True else "none"
        security = "ssl" if payload.get("use_ssl") is True else tls
    if security is not None or not partial:
        security = security or "starttls"
        if security not in set(SmtpSecurity):
            errors["security"] = f"one of {', '.join(SmtpSecurity)}"
        else:
            values["security"] = SmtpSecurity(security)
    password = payload.get("password")
    if "password" in payload and password is not None and (not isinstance(password, str) or len(password) > 500):
        errors["password"] = "a string of at most 500 characters, or null to keep the stored one"  # noqa: S105
    if errors:
        raise InvalidPayload("Not a valid SMTP config.", errors)
    changes = {name: str(value) for name, value in values.items() if getattr(config, name, None) != value}
    for name, value in values.items():
        setattr(config, name, value)
    if isinstance(password, str) and password not in ("", MASK):  # write-only: the mask keeps it
        config.password_encrypted = encrypt_secret(password)
        changes["password"] = "changed"  # noqa: S105
    elif "password" in payload and password == "":
        config.password_encrypted = None
        changes["password"] = "cleared"  # noqa: S105
    return changes


@bp.get("/smtp")
@limited
@api_required("read")
def smtp_list():
    query = g.principal.scoped(db.select(SmtpConfig).order_by(SmtpConfig.id), SmtpConfig.customer_id)
    customer_id = query_int("customer_id")
    if customer_id is not None:
        query = query.where(SmtpConfig.customer_id == customer_id)
    return {"items": [smtp_json(c) for c in db.session.scalars(query.limit(500))]}


@bp.post("/smtp")
@limited
@api_required("admin")
def smtp_create():
    config = SmtpConfig()
    changes = _apply(config, body(), partial=False)
    db.session.add(config)
    db.session.flush()
    audit.record(actor=g.principal.user, action="smtp.create", target=config, summary=config.host, changes=changes)
    answer = smtp_json(config)
    db.session.commit()
    return answer, 201


@bp.get("/smtp/<int:config_id>")
@limited
@api_required("read")
def smtp_detail(config_id: int):
    return smtp_json(_visible(config_id))


@bp.route("/smtp/<int:config_id>", methods=["PUT", "PATCH"])
@limited
@api_required("admin")
def smtp_update(config_id: int):
    from flask import request

    config = _visible(config_id)
    changes = _apply(config, body(), partial=request.method == "PATCH")
    config.updated_at = utcnow()
    audit.record(actor=g.principal.user, action="smtp.update", target=config, summary=config.host, changes=changes)
    db.session.flush()
    answer = smtp_json(config)
    db.session.commit()
    return answer


@bp.delete("/smtp/<int:config_id>")
@limited
@api_required("admin")
def smtp_delete(config_id: int):
    config = _visible(config_id)
    audit.record(actor=g.principal.user, action="smtp.delete", target=config, summary=config.host)
    db.session.delete(config)
    db.session.commit()
    return "", 204


@bp.post("/smtp/<int:config_id>/test-email")
@limited
@api_required("write")
def smtp_test_email(config_id: int):
    config = _visible(config_id)
    payload = body()
    reject_unknown(payload, {"recipient_email"})
    recipient = payload.get("recipient_email")
    try:
        if not isinstance(recipient, str):
            raise ValueError("required string")
        recipient = normalise_email(recipient)
    except ValueError as exc:
        raise InvalidPayload("Say where to send the test email.", {"recipient_email": str(exc)}) from None
    notification = test_sends.email(customer=config.customer, to=recipient, actor=g.principal.user, smtp_config=config)
    notification_id = notification.id
    db.session.commit()
    return {
        "status": "queued",
        "notification_id": notification_id,
        "message": f"Test email to {recipient} is on its way; follow it at /api/v1/notifications/{notification_id}.",
    }, 202


SMTP_WRITE_PROPS = {
    "customer_id": {"type": "integer", "minimum": 1},
    "name": {"type": ["string", "null"], "maxLength": 120},
    "host": {"type": "string", "minLength": 1, "maxLength": 255},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "security": {"enum": [str(s) for s in SmtpSecurity]},
    "use_tls": {"type": "boolean"},
    "use_ssl": {"type": "boolean"},
    "username": {"type": ["string", "null"], "maxLength": 255},
    "password": {"type": ["string", "null"], "maxLength": 500, "writeOnly": True},
    "from_email": {"type": "string", "format": "email", "maxLength": 254},
    "from_name": {"type": ["string", "null"], "maxLength": 120},
    "reply_to": {"type": ["string", "null"], "format": "email", "maxLength": 254},
    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 300},
    "enabled": {"type": "boolean"},
}

OPENAPI_SCHEMAS = {
    "SmtpConfig": {
        "type": "object",
        "required": ["id", "customer_id", "host", "port", "security", "from_email", "enabled"],
        "properties": {
            "id": {"type": "integer"},
            "customer_id": {"type": "integer"},
            "name": {"type": "string"},
            "host": {"type": "string"},
            "port": {"type": "integer"},
            "security": {"enum": [str(s) for s in SmtpSecurity]},
            "username": {"type": ["string", "null"]},
            "password": {"enum": [MASK, None], "description": "never shown: ******** when one is stored"},
            "from_email": {"type": "string"},
            "from_name": {"type": ["string", "null"]},
            "reply_to": {"type": ["string", "null"]},
            "timeout_seconds": {"type": "integer"},
            "enabled": {"type": "boolean"},
            "last_test_at": NULLABLE_DATETIME,
            "last_test_ok": {"type": ["boolean", "null"]},
            "last_test_message": {"type": ["string", "null"]},
            "created_at": DATETIME,
            "updated_at": DATETIME,
        },
    },
    "SmtpConfigWrite": {
        "type": "object",
        "required": ["customer_id", "host", "from_email"],
        "additionalProperties": False,
        "properties": SMTP_WRITE_PROPS,
    },
    "SmtpConfigPatch": {"type": "object", "additionalProperties": False, "properties": SMTP_WRITE_PROPS},
    "TestEmail": {
        "type": "object",
        "required": ["recipient_email"],
        "additionalProperties": False,
        "properties": {"recipient_email": {"type": "string", "format": "email"}},
    },
    "TestEmailQueued": {
        "type": "object",
        "required": ["status", "notification_id"],
        "properties": {
            "status": {"enum": ["queued", "pending"]},
            "notification_id": {"type": "integer"},
            "message": {"type": "string"},
        },
    },
}

OPENAPI_PATHS = {
    "/api/v1/smtp": {
        "get": {
            "tags": ["smtp"],
            "summary": "List SMTP configs",
            "parameters": [query_param("customer_id", {"type": "integer", "minimum": 1})],
            "responses": responses(
                200, {"type": "object", "properties": {"items": {"type": "array", "items": ref("SmtpConfig")}}}
            ),
        },
        "post": {
            "tags": ["smtp"],
            "summary": "Create an SMTP config (admin scope)",
            "requestBody": json_request(ref("SmtpConfigWrite")),
            "responses": responses(201, ref("SmtpConfig"), 403, 413, 415, 422, description="Created"),
        },
    },
    "/api/v1/smtp/{config_id}": {
        "parameters": [path_id("config_id")],
        "get": {"tags": ["smtp"], "summary": "One SMTP config", "responses": responses(200, ref("SmtpConfig"), 404)},
        "put": {
            "tags": ["smtp"],
            "summary": "Replace an SMTP config (admin scope); omit password or send ******** to keep it",
            "requestBody": json_request(ref("SmtpConfigWrite")),
            "responses": responses(200, ref("SmtpConfig"), 403, 404, 413, 415, 422),
        },
        "patch": {
            "tags": ["smtp"],
            "summary": "Change some fields of an SMTP config (admin scope)",
            "requestBody": json_request(ref("SmtpConfigPatch")),
            "responses": responses(200, ref("SmtpConfig"), 403, 404, 413, 415, 422),
        },
        "delete": {
            "tags": ["smtp"],
            "summary": "Delete an SMTP config (admin scope)",
            "responses": responses(204, None, 403, 404, description="Deleted"),
        },
    },
    "/api/v1/smtp/{config_id}/test-email": {
        "parameters": [path_id("config_id")],
        "post": {
            "tags": ["smtp"],
            "summary": "Send a test email through this config (write scope)",
            "requestBody": json_request(ref("TestEmail")),
            "responses": responses(202, ref("TestEmailQueued"), 403, 404, 413, 415, 422, description="Queued"),
        },
    },
}
