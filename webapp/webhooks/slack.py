"""Slack's interaction requests (a click on a message's Acknowledge button): POST /api/v1/webhooks/slack/interactions.

Slack signs each request with the app's signing secret (SLACK_SIGNING_SECRET): X-Slack-Signature is
"v0=" + hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{raw body}", compared in constant time; a timestamp
more than five minutes (WEBHOOK_TOLERANCE_SECONDS) from now is refused as a replay. Any failure answers 401 and
changes nothing. The body is form-encoded, its `payload` field the JSON of the click.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from flask import current_app, request
from werkzeug.exceptions import BadRequest, Forbidden

from webapp.channels import slack
from webapp.extensions import db
from webapp.security import constant_time_equals
from webapp.services.inbound import slack_actions
from webapp.services.integrations import webhook_sources
from webapp.webhooks import bp, unauthorized

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
PATH = "/slack/interactions"


def _refusal(body: bytes):
    """None when Slack signed this request now; else the 401 answer."""
    secret = current_app.config.get("SLACK_SIGNING_SECRET")
    if not secret:
        raise Forbidden("Slack interactivity is not configured here (no SLACK_SIGNING_SECRET).")
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not stamp.isdigit() or len(stamp) > 12 or not given:
        return unauthorized(f"Send {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}, as Slack does.", scheme="Slack")
    tolerance = int(current_app.config["WEBHOOK_TOLERANCE_SECONDS"])
    if abs(time.time() - int(stamp)) > tolerance:
        return unauthorized(f"{TIMESTAMP_HEADER} is more than {tolerance} s away from now: stale or replayed.", "Slack")
    expected = "v0=" + webhook_sources.hmac_sha256(secret.encode(), slack.base_string(stamp, body))
    if not constant_time_equals(given.strip().lower(), expected):
        return unauthorized(f"{SIGNATURE_HEADER} does not match SLACK_SIGNING_SECRET.", scheme="Slack")
    return None


def _payload(body: bytes) -> dict:
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        raise BadRequest("Send the form field `payload`: the JSON of the interaction.") from None
    if not isinstance(payload, dict):
        raise BadRequest("`payload` must be a JSON object.")
    return payload


@bp.post(PATH, endpoint="slack_interactions")
def slack_interactions():
    body = request.get_data(cache=True)
    refusal = _refusal(body)
    if refusal is not None:
        return refusal
    answer = slack_actions.acknowledge(_payload(body))
    db.session.commit()
    return answer


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
OPENAPI_PATHS = {
    "/api/v1/webhooks" + PATH: {
        "post": {
            "tags": ["webhooks"],
            "summary": "Slack interactivity: the Acknowledge button of a posted incident",
            "security": [],
            "parameters": [
                {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": text}
                for name, text in (
                    (SIGNATURE_HEADER, 'v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>"> with SLACK_SIGNING_SECRET'),
                    (TIMESTAMP_HEADER, "the Unix time signed; refused when more than 5 minutes away"),
                )
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "properties": {"payload": {"type": "string"}}}
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "The message replacing the clicked one",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **{
                    str(code): {"description": text, "content": _ERROR}
                    for code, text in (
                        (400, "No `payload` form field, or not JSON"),
                        (401, "Missing, wrong or stale Slack signature"),
                        (403, "SLACK_SIGNING_SECRET is not set"),
                        (413, "Body too large"),
                        (422, "Not a click on an Acknowledge button"),
                    )
                },
            },
        }
    }
}
