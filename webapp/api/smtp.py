"""/api/v1/smtp: per-customer SMTP configs (password write-only) and the test email.

The fields, their checks and their JSON come from SMTP_CONFIG (webapp.services.integrations.smtp_configs),
whose functions also apply the tenant boundary: these views parse, call, commit and answer."""

from __future__ import annotations

from flask import request

from webapp import tenancy
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
from webapp.inputs import query_int
from webapp.models import SmtpConfig
from webapp.services.delivery import test_sends
from webapp.services.integrations import smtp_configs
from webapp.services.integrations.smtp_configs import SEED_BOOLEANS, SMTP_CONFIG
from webapp.validation import normalise_email


def smtp_json(config: SmtpConfig) -> dict:
    return {
        "id": config.id,
        "customer_id": config.customer_id,
        **SMTP_CONFIG.dump(config),
        "last_test_at": iso(config.last_test_at),
        "last_test_ok": config.last_test_ok,
        "last_test_message": config.last_test_message,
        "created_at": iso(config.created_at),
        "updated_at": iso(config.updated_at),
    }


@bp.get("/smtp")
@limited
@api_required("read")
def smtp_list():
    query = smtp_configs.scoped(tenancy.current(), db.select(SmtpConfig).order_by(SmtpConfig.id))
    customer_id = query_int("customer_id")
    if customer_id is not None:
        query = query.where(SmtpConfig.customer_id == customer_id)
    return {"items": [smtp_json(c) for c in db.session.scalars(query.limit(500))]}


@bp.post("/smtp")
@limited
@api_required("write")
def smtp_create():
    config = smtp_configs.create(tenancy.current(), body())
    answer = smtp_json(config)
    db.session.commit()
    return answer, 201


@bp.get("/smtp/<int:config_id>")
@limited
@api_required("read")
def smtp_detail(config_id: int):
    return smtp_json(smtp_configs.visible(tenancy.current(), config_id))


@bp.route("/smtp/<int:config_id>", methods=["PUT", "PATCH"])
@limited
@api_required("write")
def smtp_update(config_id: int):
    caller = tenancy.current()
    config = smtp_configs.visible(caller, config_id)
    smtp_configs.update(caller, config, body(), partial=request.method == "PATCH")
    answer = smtp_json(config)
    db.session.commit()
    return answer


@bp.delete("/smtp/<int:config_id>")
@limited
@api_required("write")
def smtp_delete(config_id: int):
    caller = tenancy.current()
    smtp_configs.delete(caller, smtp_configs.visible(caller, config_id))
    db.session.commit()
    return "", 204


@bp.post("/smtp/<int:config_id>/test-email")
@limited
@api_required("write")
def smtp_test_email(config_id: int):
    caller = tenancy.current()
    config = smtp_configs.visible(caller, config_id)
    payload = body()
    reject_unknown(payload, {"recipient_email"})
    recipient = payload.get("recipient_email")
    try:
        if not isinstance(recipient, str):
            raise ValueError("required string")
        recipient = normalise_email(recipient)
    except ValueError as exc:
        raise InvalidPayload("Say where to send the test email.", {"recipient_email": str(exc)}) from None
    notification = test_sends.email(customer=config.customer, to=recipient, actor=caller.user, smtp_config=config)
    notification_id = notification.id
    db.session.commit()
    return {
        "status": "queued",
        "notification_id": notification_id,
        "message": f"Test email to {recipient} is on its way; follow it at /api/v1/notifications/{notification_id}.",
    }, 202


CUSTOMER_PROP = {"customer_id": {"type": "integer", "minimum": 1, "description": "whose settings (set at creation)"}}
SEED_PROPS = {f.name: {**f.write_schema(), "deprecated": True, "description": f.label} for f in SEED_BOOLEANS}
SMTP_WRITE_PROPS = {**CUSTOMER_PROP, **SMTP_CONFIG.write_schema(), **SEED_PROPS}

OPENAPI_SCHEMAS = {
    "SmtpConfig": {
        "type": "object",
        "required": ["id", "customer_id", *SMTP_CONFIG.names],
        "properties": {
            "id": {"type": "integer"},
            "customer_id": {"type": "integer"},
            **SMTP_CONFIG.read_schema(),
            "last_test_at": NULLABLE_DATETIME,
            "last_test_ok": {"type": ["boolean", "null"]},
            "last_test_message": {"type": ["string", "null"]},
            "created_at": DATETIME,
            "updated_at": DATETIME,
        },
    },
    "SmtpConfigWrite": {
        "type": "object",
        "required": ["customer_id", *SMTP_CONFIG.required()],
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
            "summary": "Create an SMTP config (write scope)",
            "requestBody": json_request(ref("SmtpConfigWrite")),
            "responses": responses(201, ref("SmtpConfig"), 403, 413, 415, 422, description="Created"),
        },
    },
    "/api/v1/smtp/{config_id}": {
        "parameters": [path_id("config_id")],
        "get": {"tags": ["smtp"], "summary": "One SMTP config", "responses": responses(200, ref("SmtpConfig"), 404)},
        "put": {
            "tags": ["smtp"],
            "summary": "Replace an SMTP config (write scope); omit password or send ******** to keep it",
            "requestBody": json_request(ref("SmtpConfigWrite")),
            "responses": responses(200, ref("SmtpConfig"), 403, 404, 413, 415, 422),
        },
        "patch": {
            "tags": ["smtp"],
            "summary": "Change some fields of an SMTP config (write scope)",
            "requestBody": json_request(ref("SmtpConfigPatch")),
            "responses": responses(200, ref("SmtpConfig"), 403, 404, 413, 415, 422),
        },
        "delete": {
            "tags": ["smtp"],
            "summary": "Delete an SMTP config (write scope)",
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
