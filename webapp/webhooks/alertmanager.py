"""Prometheus Alertmanager (webhook payload version 4)."""

from __future__ import annotations

from flask import current_app

from webapp.errors import json_error
from webapp.inputs import read_json_object
from webapp.security import bearer_token, constant_time_equals, require_address
from webapp.sources import alertmanager
from webapp.webhooks import bp, store, webhook_doc


@bp.post("/alertmanager", endpoint="alertmanager")
def alertmanager_webhook():
    if not constant_time_equals(bearer_token(), current_app.config["ALERT_WEBHOOK_TOKEN"]):
        body, status = json_error(401, "unauthorized", "Send 'Authorization: Bearer <ALERT_WEBHOOK_TOKEN>'.")
        return body, status, {"WWW-Authenticate": 'Bearer realm="opsrelay"'}
    require_address(
        current_app.config["ALERT_WEBHOOK_ALLOWED_IPS"], guard="alertmanager", what="the Alertmanager token"
    )
    payload = read_json_object()
    items = alertmanager.parse(payload)
    extra = {"alerts": len(items)}
    truncated = payload.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:
        extra["truncated_alerts"] = truncated  # Alertmanager left these out of the group (max_alerts)
    return store(items, extra=extra), 200


OPENAPI_PATHS = {
    "/api/v1/webhooks/alertmanager": webhook_doc(
        "Prometheus Alertmanager webhook (payload v4): Authorization: Bearer <ALERT_WEBHOOK_TOKEN>",
        security=[{"AlertToken": []}],
    )
}
