"""Heartbeats: named check-in URLs per customer (POST /api/v1/heartbeats/<name>). A heartbeat not checked
in within its interval plus grace opens an alert through the normal ingest (source "heartbeat"); the next
check-in resolves it. The sweep (`sweep`, run by the periodic job `check_heartbeats`) flips each late
heartbeat with one conditional UPDATE, so several schedulers never open the same alert twice.

An alert's incident key is `heartbeat-<id>` (one open incident per heartbeat, which the check-in resolves) and
its dedup key `heartbeat-<id>@<when it was found late>`: the firing and the resolved event share it, and the
next miss is a new alert (a new incident). Flushes, never commits.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import abort
from sqlalchemy import update

from webapp import tenancy
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.fields import Choice, Integer, Spec, Text
from webapp.inputs import is_id
from webapp.models import Customer, EventStatus, Heartbeat, Role, Severity, utcnow
from webapp.security import hash_api_key
from webapp.services import audit
from webapp.services.events import ingest
from webapp.sources.normalised import NormalisedEvent

SOURCE = "heartbeat"  # kinds.INTERNAL_ORIGINS
TOKEN_PREFIX = "hb_"  # noqa: S105 - marks a check-in token, not a secret
CUSTOMER = "customer_id"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_name(values: dict[str, Any]) -> dict[str, str]:
    name = values.get("name")
    if isinstance(name, str) and not _NAME.fullmatch(name):
        return {"name": "Letters, digits, dots, dashes and underscores only (it is part of the URL)."}
    return {}


HEARTBEAT = Spec(
    "heartbeat",
    (
        Text(name="name", label="Name", required=True, max_length=80, help="Part of the check-in URL"),
        Integer(
            name="interval_seconds",
            label="Expected every (seconds)",
            required=True,
            minimum=30,
            maximum=31 * 24 * 3600,
            default=3600,
        ),
        Integer(
            name="grace_seconds",
            label="Grace (seconds)",
            required=True,
            minimum=0,
            maximum=7 * 24 * 3600,
            default=300,
            help="How late a check-in may be before the alert",
        ),
        Choice(name="severity", label="Alert severity", choices=tuple(Severity), default=Severity.CRITICAL),
    ),
    checks=(_check_name,),
)


def scoped(principal: tenancy.Principal, query):
    return principal.scoped(query, Heartbeat.customer_id)


def visible(principal: tenancy.Principal, heartbeat_id: int) -> Heartbeat:
    heartbeat = db.session.get(Heartbeat, heartbeat_id)
    if heartbeat is None:
        abort(404, description="No such heartbeat here.")
    principal.check_see(heartbeat.customer_id)
    return heartbeat


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


def create(
    principal: tenancy.Principal, payload: dict[str, Any], *, now: datetime | None = None
) -> tuple[Heartbeat, str]:
    """A heartbeat for the customer `payload` names; returns it and its check-in token (shown once)."""
    principal.require(Role.OPERATOR)
    now = now or utcnow()
    customer_id = payload.get(CUSTOMER, principal.only_customer_id())
    errors = {}
    if not is_id(customer_id) or db.session.get(Customer, customer_id) is None or not principal.can_see(customer_id):
        errors[CUSTOMER] = "No such customer here."
    values = HEARTBEAT.validate(payload, also=(CUSTOMER,), refused=errors)
    principal.check_change(customer_id)
    taken = db.session.scalar(
        db.select(Heartbeat.id).where(Heartbeat.customer_id == customer_id, Heartbeat.name == values["name"])
    )
    if taken is not None:
        raise InvalidPayload(f"Not a valid {HEARTBEAT.noun}.", {"name": "This customer has a heartbeat of that name."})
    token = new_token()
    heartbeat = Heartbeat(customer_id=customer_id, token_hash=hash_api_key(token), token_prefix=token[:10])
    changes = HEARTBEAT.apply(heartbeat, values)
    heartbeat.due_at = heartbeat.next_due(now)
    db.session.add(heartbeat)
    db.session.flush()
    audit.record(
        actor=principal.user, action="heartbeat.create", target=heartbeat, summary=heartbeat.name, changes=changes
    )
    return heartbeat, token


def set_paused(
    principal: tenancy.Principal, heartbeat: Heartbeat, paused: bool, *, now: datetime | None = None
) -> bool:
    """Pause (no alert while paused) or resume (the clock starts again now); False if it already was."""
    principal.check_change(heartbeat.customer_id)
    if heartbeat.paused == paused:
        return False
    heartbeat.paused = paused
    if not paused:
        heartbeat.due_at = heartbeat.next_due(now or utcnow())
    audit.record(
        actor=principal.user,
        action="heartbeat.pause" if paused else "heartbeat.resume",
        target=heartbeat,
        summary=heartbeat.name,
    )
    return True


def by_token(token: str) -> Heartbeat | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    return db.session.scalar(db.select(Heartbeat).where(Heartbeat.token_hash == hash_api_key(token)))


def named(principal: tenancy.Principal, name: str, customer_id: int | None = None) -> Heartbeat:
    """The heartbeat `name` among those the principal sees (404 if none; 422 if several customers have one)."""
    query = scoped(principal, db.select(Heartbeat).where(Heartbeat.name == name))
    if customer_id is not None:
        query = query.where(Heartbeat.customer_id == customer_id)
    found = list(db.session.scalars(query.limit(2)))
    if not found:
        abort(404, description="No heartbeat of that name here.")
    if len(found) > 1:
        raise InvalidPayload(
            "Several customers have a heartbeat of this name: add ?customer_id=.", {CUSTOMER: "required here"}
        )
    return found[0]


def _dedup_key(heartbeat: Heartbeat, missed_at: datetime) -> str:
    return f"heartbeat-{heartbeat.id}@{missed_at.isoformat()}"


def _event(heartbeat: Heartbeat, missed_at: datetime, status: EventStatus, *, now: datetime) -> NormalisedEvent:
    every = timedelta(seconds=heartbeat.interval_seconds)
    since = heartbeat.last_checkin_at
    if status == EventStatus.FIRING:
        title = f"Heartbeat {heartbeat.name} missed"
        body = (
            f"No check-in since {since.strftime('%Y-%m-%d %H:%M UTC') if since else 'it was created'}; "
            f"expected every {every} with {heartbeat.grace_seconds} s of grace."
        )
    else:
        title = f"Heartbeat {heartbeat.name} is back"
        body = f"Checked in at {now.strftime('%Y-%m-%d %H:%M UTC')} after missing since {missed_at:%Y-%m-%d %H:%M UTC}."
    return NormalisedEvent(
        source=SOURCE,
        dedup_key=_dedup_key(heartbeat, missed_at),
        status=status,
        severity=heartbeat.severity,
        title=title,
        body=body,
        labels={"alertname": f"heartbeat:{heartbeat.name}", "heartbeat": heartbeat.name},
        data={"heartbeat_id": heartbeat.id, "fingerprint": f"heartbeat-{heartbeat.id}"},
        customer_id=heartbeat.customer_id,
        starts_at=missed_at,
        ends_at=now if status == EventStatus.RESOLVED else None,
        incident_key=f"heartbeat-{heartbeat.id}",  # one open incident per heartbeat; its check-in resolves it
    )


def check_in(heartbeat: Heartbeat, *, now: datetime | None = None) -> dict:
    """Record a check-in; if the heartbeat was late, resolve its alert. Returns what happened."""
    now = now or utcnow()
    missed_at = heartbeat.missed_at
    heartbeat.last_checkin_at = now
    heartbeat.due_at = heartbeat.next_due(now)
    heartbeat.missed_at = None
    answer: dict[str, Any] = {"resolved": False}
    if missed_at is not None:
        received = ingest.receive([_event(heartbeat, missed_at, EventStatus.RESOLVED, now=now)], now=now)
        answer = {"resolved": True, "event_ids": received["event_ids"]}
    return answer


def sweep(*, now: datetime | None = None) -> list[int]:
    """Open an alert for each watched heartbeat past its due time; returns their ids. Each row is flipped by one
    conditional UPDATE, so a concurrent sweep cannot open the same alert."""
    now = now or utcnow()  # part of the dedup key: each miss its own, even two in one second
    late = list(
        db.session.scalars(
            update(Heartbeat)
            .where(Heartbeat.paused.is_(False), Heartbeat.missed_at.is_(None), Heartbeat.due_at <= now)
            .values(missed_at=now)
            .returning(Heartbeat.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not late:
        return []
    heartbeats = list(db.session.scalars(db.select(Heartbeat).where(Heartbeat.id.in_(late)).order_by(Heartbeat.id)))
    for heartbeat in heartbeats:
        db.session.refresh(heartbeat)
    ingest.receive([_event(h, now, EventStatus.FIRING, now=now) for h in heartbeats], now=now)
    return [h.id for h in heartbeats]
