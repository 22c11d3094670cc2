"""PagerDuty v3 webhooks: X-PagerDuty-Signature verified, incidents become events (and tickets)."""

from __future__ import annotations

from dataclasses import replace

from flask import request

from webapp.extensions import db
from webapp.inputs import raw_json_body, read_json_object
from webapp.models import SOURCE_KINDS
from webapp.services.inbound import follow_ups
from webapp.services.integrations import webhook_sources
from webapp.sources import pagerduty
from webapp.webhooks import admit, bp, store, unauthorized, webhook_doc

SIGNATURE_HEADER = SOURCE_KINDS[pagerduty.SOURCE].signature_header


def signatures() -> list[str]:
    """The v1 signatures of the header; during a secret rotation PagerDuty sends one per secret."""
    header = request.headers.get(SIGNATURE_HEADER, "")
    return [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]


@bp.post("/pagerduty", endpoint="pagerduty")
def pagerduty_webhook():
    body = raw_json_body()
    given = signatures()
    if not given:
        return unauthorized(f"Send the {SIGNATURE_HEADER} header (v1=<HMAC-SHA256 of the body>).")
    sources = webhook_sources.active(pagerduty.SOURCE, name=request.args.get("source"))
    source = webhook_sources.matching(sources, body, given)
    if source is None:
        return unauthorized("No signature matches the secret of an active PagerDuty source.")
    admit(source)
    payload = read_json_object()
    items = [replace(item, customer_id=source.customer_id) for item in pagerduty.parse(payload)]
    webhook_sources.touch(source)
    if not items:
        db.session.commit()
        event_type = payload["event"]["event_type"]
        return {"status": "ignored", "message": f"PagerDuty event type {event_type!r} is accepted and ignored."}, 202
    return store(items, follow_up=follow_ups.of_source("pagerduty", source), extra={"source": source.name}), 200


OPENAPI_PATHS = {
    "/api/v1/webhooks/pagerduty": webhook_doc(
        "PagerDuty v3 webhook (incident.triggered, acknowledged, resolved, priority_updated)",
        security=[],
        headers=[(SIGNATURE_HEADER, "v1=<hex HMAC-SHA256 of the body>[,v1=...] (several during a secret rotation)")],
    )
}
