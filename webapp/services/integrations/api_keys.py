"""API keys: created with scopes, an optional expiry and customer; shown once, stored hashed, revocable."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from webapp.extensions import db
from webapp.models import ApiKey, Customer, User, utcnow
from webapp.security import hash_api_key
from webapp.services import audit
from webapp.services.integrations import allow_lists
from webapp.tenancy import SCOPES

MAX_EXPIRES_DAYS = 3650
KEY_PREFIX = "opsr_"


def new_key() -> tuple[str, str]:
    """(the key to show once, its display prefix)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:12]


class KeyInputError(ValueError):
    """The key cannot be made as asked; `field` names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def create_key(
    *,
    name: str,
    scopes: list[str],
    customer: Customer | None,
    expires_days: int | None,
    created_by: User | None,
    allowed_ips: str | list[str] | None = None,
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Add a key and return it with the plain key (shown once, never stored). Flushes, never commits.
    `allowed_ips` (CIDR) limits where it is accepted from."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise KeyInputError("name", "required, at most 120 characters")
    if not scopes or any(scope not in SCOPES for scope in scopes):
        raise KeyInputError("scopes", f"one or more of {', '.join(SCOPES)}")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise KeyInputError("expires_days", f"a whole number of days from 1 to {MAX_EXPIRES_DAYS}, or null")
    networks = allow_lists.networks(allowed_ips, KeyInputError)
    now = now or utcnow()
    plain, prefix = new_key()
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=hash_api_key(plain),
        scopes=sorted(set(scopes), key=SCOPES.index),
        customer_id=customer.id if customer else None,
        created_by_id=created_by.id if created_by else None,
        expires_at=now + timedelta(days=expires_days) if expires_days else None,
        created_at=now,
        allowed_ips=networks,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(
        actor=created_by,
        action="api_key.create",
        target=key,
        summary=f"API key {name!r} ({prefix}…) scopes {','.join(key.scopes)}",
        changes={
            "scopes": key.scopes,
            "customer_id": key.customer_id,
            "expires_days": expires_days,
            "allowed_ips": networks,
        },
    )
    return key, plain


def set_allowed_ips(key: ApiKey, value: str | list[str] | None, *, actor: User | None) -> bool:
    """Replace the networks the key is accepted from (empty: anywhere); False if unchanged."""
    return allow_lists.replace(
        key, value, error=KeyInputError, actor=actor, label=f"API key {key.name!r} ({key.prefix}…)"
    )


def revoke(key: ApiKey, *, actor: User | None = None, now: datetime | None = None) -> bool:
    """Revoke the key (it stops working at once); False if it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = now or utcnow()
    audit.record(actor=actor, action="api_key.revoke", target=key, summary=f"API key {key.name!r} ({key.prefix}…)")
    return True


def status(key: ApiKey, *, now: datetime | None = None) -> str:
    """active, expired or revoked."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or utcnow()):
        return "expired"
    return "active"
