"""Incoming webhook sources: their secrets (encrypted at rest, never shown back) and signature checks."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from webapp.extensions import db
from webapp.models import WEBHOOK_SOURCE_KINDS, Customer, User, WebhookSource, utcnow
from webapp.security import decrypt_secret, encrypt_secret
from webapp.services import audit
from webapp.services.integrations import allow_lists

MIN_SECRET = 16


class SourceInputError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def create(
    *,
    name: str,
    kind: str,
    customer: Customer | None,
    secret: str | None,
    create_tickets: bool = False,
    allowed_ips: str | list[str] | None = None,
    actor: User | None = None,
) -> WebhookSource:
    """Add a source; flushes, never commits. PagerDuty and GitHub sources need a secret; `allowed_ips` (CIDR)
    limits where its webhooks are accepted from."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise SourceInputError("name", "required, at most 120 characters")
    if kind not in WEBHOOK_SOURCE_KINDS:
        raise SourceInputError("kind", f"one of {WEBHOOK_SOURCE_KINDS.one_of()}")
    if db.session.scalar(db.select(WebhookSource.id).where(WebhookSource.name == name)) is not None:
        raise SourceInputError("name", f"a source named {name!r} already exists")
    if WEBHOOK_SOURCE_KINDS[kind].secret_required and not secret:
        raise SourceInputError("secret", f"a {kind} source needs the signing secret {kind} shows you")
    source = WebhookSource(
        name=name,
        kind=kind,
        customer_id=customer.id if customer else None,
        create_tickets=create_tickets,
        allowed_ips=allow_lists.networks(allowed_ips, SourceInputError),
    )
    db.session.add(source)
    if secret:
        set_secret(source, secret, actor=None)
    db.session.flush()
    audit.record(
        actor=actor,
        action="webhook_source.create",
        target=source,
        summary=f"{kind} source {name!r}",
        changes={
            "kind": kind,
            "customer_id": source.customer_id,
            "create_tickets": create_tickets,
            "allowed_ips": source.allowed_ips,
        },
    )
    return source


def set_allowed_ips(source: WebhookSource, value: str | list[str] | None, *, actor: User | None) -> bool:
    """Replace the networks the source's webhooks are accepted from (empty: anywhere); False if unchanged."""
    return allow_lists.replace(source, value, error=SourceInputError, actor=actor, label=source.name)


def set_secret(source: WebhookSource, secret: str | None, *, actor: User | None = None) -> None:
    """Replace (or, where the kind allows, clear with None) the signing secret; it is stored encrypted."""
    if secret is None:
        if WEBHOOK_SOURCE_KINDS[source.kind].secret_required:
            raise SourceInputError("secret", f"a {source.kind} source needs a secret")
        source.secret_encrypted = None
    else:
        if len(secret) < MIN_SECRET:
            raise SourceInputError("secret", f"use at least {MIN_SECRET} characters")
        source.secret_encrypted = encrypt_secret(secret)
    if actor is not None or source.id is not None:
        audit.record(actor=actor, action="webhook_source.secret", target=source, summary="signing secret changed")


def secret_of(source: WebhookSource) -> bytes | None:
    return decrypt_secret(source.secret_encrypted).encode() if source.secret_encrypted else None


def active(kind: str, *, name: str | None = None) -> list[WebhookSource]:
    query = db.select(WebhookSource).where(WebhookSource.kind == kind, WebhookSource.is_active.is_(True))
    if name is not None:
        query = query.where(WebhookSource.name == name)
    return list(db.session.scalars(query.order_by(WebhookSource.id)))


def hmac_sha256(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def matching(sources: list[WebhookSource], message: bytes, signatures: list[str]) -> WebhookSource | None:
    """The source whose secret signed `message` (hex HMAC-SHA256), comparing in constant time; None if none."""
    for source in sources:
        secret = secret_of(source)
        if secret is None:
            continue
        expected = hmac_sha256(secret, message)
        if any(hmac.compare_digest(expected.encode(), given.strip().lower().encode()) for given in signatures):
            return source
    return None


def touch(source: WebhookSource, *, now: datetime | None = None) -> None:
    source.last_received_at = now or utcnow()
