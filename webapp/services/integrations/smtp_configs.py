"""SMTP settings per customer; the password is write-only (encrypted at rest, never shown back)."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import Customer, SmtpConfig, SmtpSecurity, User
from webapp.security import encrypt_secret
from webapp.services import audit

FIELDS = (
    "name",
    "host",
    "port",
    "security",
    "username",
    "from_email",
    "from_name",
    "reply_to",
    "timeout_seconds",
    "enabled",
)


def save(
    config: SmtpConfig | None,
    *,
    customer: Customer,
    values: dict,
    password: str | None,
    actor: User,
) -> SmtpConfig:
    """Create (config None) or update; an empty `password` keeps the stored one. Flushes, never commits."""
    creating = config is None
    if creating:
        config = SmtpConfig(customer=customer)
        db.session.add(config)
    changes = {}
    for name in FIELDS:
        value = values[name]
        if name == "security":
            value = SmtpSecurity(value)
        if name in ("username", "from_name", "reply_to"):
            value = value or None
        if getattr(config, name) != value:
            changes[name] = str(value) if value is not None else None
            setattr(config, name, value)
    if password:
        config.password_encrypted = encrypt_secret(password)
        changes["password"] = "changed"  # noqa: S105 - a marker, never the value
    db.session.flush()
    audit.record(
        actor=actor,
        action="smtp.create" if creating else "smtp.update",
        target=config,
        summary=f"SMTP settings {config.name!r} for {customer.name}",
        changes=changes,
    )
    return config
