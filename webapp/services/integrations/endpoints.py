"""Outgoing webhook endpoints: created with a signing secret shown once and stored encrypted.

(API keys live in services/api_keys.py.)
"""

from __future__ import annotations

import hashlib
import secrets

from webapp.extensions import db
from webapp.models import Customer, User, WebhookEndpoint
from webapp.security import encrypt_secret
from webapp.services import audit


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_endpoint(
    *,
    customer: Customer | None,
    name: str,
    url: str,
    event_types: list[str],
    is_active: bool,
    actor: User,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (return it to show once; only the encrypted form is kept)."""
    secret = _new_secret()
    endpoint = WebhookEndpoint(
        customer_id=customer.id if customer else None,
        name=name,
        url=url,
        secret_encrypted=encrypt_secret(secret),
        event_types=sorted(set(event_types)),
        is_active=is_active,
    )
    db.session.add(endpoint)
    db.session.flush()
    audit.record(
        actor=actor,
        action="webhook_endpoint.create",
        target=endpoint,
        summary=f"outgoing webhook {name!r} to {url}",
        changes={"url": url, "event_types": endpoint.event_types},
    )
    return endpoint, secret


def update_endpoint(
    endpoint: WebhookEndpoint, *, name: str, url: str, event_types: list[str], is_active: bool, actor: User
) -> dict:
    changes = {}
    for field, value in (
        ("name", name),
        ("url", url),
        ("event_types", sorted(set(event_types))),
        ("is_active", is_active),
    ):
        if getattr(endpoint, field) != value:
            changes[field] = value
            setattr(endpoint, field, value)
    if changes:
        audit.record(
            actor=actor, action="webhook_endpoint.update", target=endpoint, summary=endpoint.name, changes=changes
        )
    return changes


def rotate_secret(endpoint: WebhookEndpoint, *, actor: User) -> str:
    secret = _new_secret()
    endpoint.secret_encrypted = encrypt_secret(secret)
    audit.record(actor=actor, action="webhook_endpoint.rotate_secret", target=endpoint, summary=endpoint.name)
    return secret


def unpause(endpoint: WebhookEndpoint, *, actor: User) -> bool:
    """Clear the pause the delivery side set after repeated failures; False if it was not paused."""
    if endpoint.paused_at is None:
        return False
    reason = endpoint.paused_reason
    endpoint.paused_at = None
    endpoint.paused_reason = None
    endpoint.consecutive_failures = 0
    audit.record(
        actor=actor,
        action="webhook_endpoint.unpause",
        target=endpoint,
        summary=f"{endpoint.name}: unpaused (was: {reason or 'no reason recorded'})",
    )
    return True


def token_fingerprint(token: str | None) -> str | None:
    """A short fingerprint to tell tokens apart without showing them."""
    if not token:
        return None
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]
