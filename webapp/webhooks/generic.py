"""Generic webhooks from any sender (automation systems reporting jobs): an optional HMAC signature
per source, an Event, and a Ticket when asked. The events API takes the same fields."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request
from redis.exceptions import RedisError
from werkzeug.exceptions import Conflict

from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import Customer, EventStatus, Priority, Severity, WebhookSource
from webapp.queue import get_queue
from webapp.services.events import ingest
from webapp.services.integrations import webhook_sources
from webapp.services.tickets import tickets
from webapp.webhooks import PARSERS, bp, raw_json_body, read_json_object, store, unauthorized, webhook_doc

log = logging.getLogger(__name__)

SOURCE = "generic"
SIGNATURE_HEADER = "X-OpsRelay-Signature"
TIMESTAMP_HEADER = "X-OpsRelay-Timestamp"
SOURCE_HEADER = "X-OpsRelay-Source"
EVENT_TYPES = ("alert", "job_success", "job_failed", "job_partial", "compliance_violation", "scheduled_backup_complete")
FIELDS = {
    "title",
    "description",
    "severity",
    "status",
    "dedup_key",
    "event_type",
    "job_type",
    "job_url",
    "labels",
    "create_ticket",
}
PRIORITY = {
    Severity.CRITICAL: Priority.URGENT,
    Severity.HIGH: Priority.HIGH,
    Severity.MEDIUM: Priority.NORMAL,
    Severity.LOW: Priority.LOW,
    Severity.INFO: Priority.LOW,
}


def _optional_str(payload: dict, name: str, limit: int, errors: dict) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        errors[name] = f"a string of at most {limit} characters"
        return None
    return value.strip() or None


def parse(payload: dict[str, Any], *, source: str = SOURCE, extra_fields: set[str] = frozenset()) -> list:
    """Pure: the generic body to one normalised event, or InvalidPayload naming each bad field."""
    errors: dict[str, str] = {}
    unknown = sorted(set(payload) - FIELDS - set(extra_fields))
    if unknown:
        errors.update({name: "unknown field" for name in unknown[:20]})
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 300:
        errors["title"] = "required, a string of 1 to 300 characters"
    description = _optional_str(payload, "description", 10_000, errors) or ""
    severity = payload.get("severity", "medium")
    if severity not in set(Severity):
        errors["severity"] = f"one of {', '.join(Severity)}"
    event_type = payload.get("event_type", "alert")
    if event_type not in EVENT_TYPES:
        errors["event_type"] = f"one of {', '.join(EVENT_TYPES)}"
    status = payload.get("status")
    if status is not None and status not in ("firing", "resolved", "info"):
        errors["status"] = "one of firing, resolved, info"
    dedup_key = _optional_str(payload, "dedup_key", 200, errors)
    job_type = _optional_str(payload, "job_type", 60, errors)
    job_url = _optional_str(payload, "job_url", 2000, errors)
    if job_url and (urlsplit(job_url).scheme not in ("http", "https") or not urlsplit(job_url).netloc):
        errors["job_url"] = "an http(s) URL"
    labels = payload.get("labels", {})
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 100 and len(v) <= 500 for k, v in labels.items()
    ):
        errors["labels"] = "an object of string values"
    elif len(labels) > 50:
        errors["labels"] = "at most 50 labels"
    if not isinstance(payload.get("create_ticket", False), bool):
        errors["create_ticket"] = "true or false"
    if errors:
        raise InvalidPayload("Not a valid event.", errors)
    if status is None:
        status = "firing" if event_type == "alert" else "info"
    return [
        ingest.NormalisedEvent(
            source=source,
            dedup_key=dedup_key or uuid.uuid4().hex,  # without a key, every report is its own event
            status=EventStatus(status),
            severity=Severity(severity),
            title=title.strip(),
            body=description,
            event_type=event_type,
            labels=labels,
            data={"job_url": job_url, "dedup_key_given": dedup_key is not None},
            job_type=job_type,
        )
    ]


PARSERS[SOURCE] = parse


def ticket_follow_up(customer_id: int | None, *, wanted: bool, source_label: str):
    """After ingest: open a ticket for each new event when `wanted` (the customer owns it)."""

    def after(result: ingest.IngestResult) -> dict:
        if not wanted:
            return {}
        opened = []
        customer = db.session.get(Customer, customer_id)
        for event in result.events:
            ticket = tickets.create(
                customer=customer,
                title=event.title[:200],
                description=event.body,
                priority=PRIORITY[event.severity],
                source=source_label,
            )
            event.ticket_id = ticket.id
            opened.append(ticket.key)
        return {"tickets": opened}

    return after


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
    sources = webhook_sources.active(SOURCE, name=name)
    if name and not sources:
        return unauthorized(f"No active generic source is named {name!r}.")
    if name and sources[0].secret_encrypted is None:
        return sources[0]  # the admin chose an unsigned source
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
    if _seen_before(signature.removeprefix("sha256=").lower(), 2 * tolerance):
        raise Conflict("This signed request was already received: a replay is not processed twice.")
    return source


@bp.post("/generic")
def generic():
    body = raw_json_body()
    source = _authenticate(body)
    if not isinstance(source, WebhookSource):
        return source
    payload = read_json_object()
    items = [replace(item, customer_id=source.customer_id) for item in parse(payload)]
    wanted = bool(payload.get("create_ticket")) or source.create_tickets
    if wanted and source.customer_id is None:
        raise InvalidPayload("A ticket needs a customer.", {"create_ticket": "this source has no customer"})
    webhook_sources.touch(source)
    after = ticket_follow_up(source.customer_id, wanted=wanted, source_label=f"webhook {source.name}")
    return store(items, after=after, extra={"source": source.name}), 200


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
