"""Generic webhooks from any sender (automation systems reporting jobs): an optional HMAC signature
per source, an Event, and a Ticket when asked. The events API takes the same fields."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from flask import current_app, request
from redis.exceptions import RedisError
from werkzeug.exceptions import Conflict

from webapp.errors import InvalidPayload
from webapp.inputs import raw_json_body, read_json_object
from webapp.models import SOURCE_KINDS, WebhookSource
from webapp.queue import get_queue
from webapp.services.inbound import follow_ups
from webapp.services.integrations import webhook_sources
from webapp.sources import generic
from webapp.webhooks import admit, bp, store, unauthorized, webhook_doc

log = logging.getLogger(__name__)

SIGNATURE_HEADER = SOURCE_KINDS[generic.SOURCE].signature_header
TIMESTAMP_HEADER = "X-OpsRelay-Timestamp"
SOURCE_HEADER = "X-OpsRelay-Source"


def _seen_before(signature: str, ttl: int) -> bool:
    """Remember a signature for its validity window; True if it was already used (a replay)."""
    try:
        connection = get_queue(current_app).connection
        return not connection.set(f"opsrelay:webhook-signature:{signature}", 1, nx=True, ex=ttl)
    except RedisError as exc:  # the timestamp window still bounds a replay
        log.warning("replay cache unreachable (%s)", type(exc).__name__)
        return False


def _authenticate(body: bytes) -> WebhookSource | tuple:
    """The source that sent this request, or the 401 answer to give."""
    name = request.args.get("source") or request.headers.get(SOURCE_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    sources = webhook_sources.active(generic.SOURCE, name=name)
    if name and not sources:
        return unauthorized(f"No active generic source is named {name!r}.")
    if name and sources[0].secret_encrypted is None:
        return admit(sources[0])  # the admin chose an unsigned source
    if not signature:
        if not name:
            return unauthorized(
                "Name your source (?source=<name> or X-OpsRelay-Source) and, if it has a secret, sign the body "
                f"({SIGNATURE_HEADER}: sha256=<HMAC-SHA256 of '<timestamp>.<body>'>, {TIMESTAMP_HEADER}: <unix time>)."
            )
        return unauthorized(f"This source signs its requests: send {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}.")
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    tolerance = int(current_app.config["WEBHOOK_TOLERANCE_SECONDS"])
    if not stamp.isdigit():
        return unauthorized(f"Send {TIMESTAMP_HEADER}: the Unix time (seconds) you signed.")
    if abs(time.time() - int(stamp)) > tolerance:
        return unauthorized(f"The signature timestamp is more than {tolerance} s away from now: stale or replayed.")
    source = webhook_sources.matching(
        [s for s in sources if s.secret_encrypted], stamp.encode() + b"." + body, [signature.removeprefix("sha256=")]
    )
    if source is None:
        return unauthorized("The signature does not match the secret of an active generic source.")
    admit(source)
    if _seen_before(signature.removeprefix("sha256=").lower(), 2 * tolerance):
        raise Conflict("This signed request was already received: a replay is not processed twice.")
    return source


@bp.post("/generic", endpoint="generic")
def generic_webhook():
    body = raw_json_body()
    source = _authenticate(body)
    if not isinstance(source, WebhookSource):
        return source
    payload = read_json_object()
    items = [replace(item, customer_id=source.customer_id) for item in generic.parse(payload)]
    wanted = bool(payload.get("create_ticket")) or source.create_tickets
    if wanted and source.customer_id is None:
        raise InvalidPayload("A ticket needs a customer.", {"create_ticket": "this source has no customer"})
    webhook_sources.touch(source)
    follow_up = None
    if wanted:
        follow_up = follow_ups.tickets(customer_id=source.customer_id, source_label=f"webhook {source.name}")
    return store(items, follow_up=follow_up, extra={"source": source.name}), 200


OPENAPI_PATHS = {
    "/api/v1/webhooks/generic": webhook_doc(
        "Any sender: title, description, severity, dedup_key, event_type, job_type, job_url, create_ticket",
        security=[],
        headers=[
            (SOURCE_HEADER, "the source's name (or ?source=<name>)"),
            (SIGNATURE_HEADER, "sha256=<hex HMAC-SHA256 of '<timestamp>.<body>'> when the source has a secret"),
            (TIMESTAMP_HEADER, "the Unix time signed; refused when more than WEBHOOK_TOLERANCE_SECONDS away"),
        ],
    )
}
