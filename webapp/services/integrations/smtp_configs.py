"""SMTP settings per customer: the fields people set (SMTP_CONFIG), and every write of them.

The SMTP pages and the API's /smtp call these functions, which apply the tenant boundary, validate through
SMTP_CONFIG, audit and flush (the caller commits).

Who: SMTP settings are a customer's rows, so webapp.tenancy's rule holds as for every such row: whoever sees
the customer reads them; its operators (an API key: the write scope) and admins change them; viewers and
read-only keys are refused (403), another customer's are a 404. Settings stay with their customer.

The password is write-only: encrypted at rest, never shown back. A page's empty password box keeps the stored
one; in JSON, null or the mask (********) keeps it and "" clears it. It is bound to where it goes: changing the
host, port, security or username without giving the password again clears it (never sent to a new server).
"""

from __future__ import annotations

from typing import Any

from flask import abort

from webapp import tenancy
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.fields import Boolean, Choice, Email, Integer, Invalid, Secret, Spec, Text
from webapp.inputs import is_id
from webapp.models import Customer, Role, SmtpConfig, SmtpSecurity
from webapp.security import encrypt_secret
from webapp.services import audit

DESTINATION = ("host", "port", "security", "username")  # where the password goes: change one, give it again

SMTP_CONFIG = Spec(
    "SMTP config",
    (
        Text(name="name", label="Name", default="Default", blank_is_default=True, max_length=120),
        Text(
            name="host",
            label="Host",
            required=True,
            required_message="Enter the SMTP server's host name.",
            max_length=255,
            width=8,
        ),
        Integer(name="port", label="Port", default=587, required=True, minimum=1, maximum=65535, width=4),
        Choice(name="security", label="Security", choices=tuple(SmtpSecurity), default=SmtpSecurity.STARTTLS),
        Text(name="username", label="Username", max_length=255),
        Secret(
            name="password",
            label="Password",
            attr="password_encrypted",
            seal=encrypt_secret,
            bound_to=DESTINATION,
            help=(
                "Leave empty to keep the stored password. Changing the host, port, username or security clears "
                "it unless you enter it again here."
            ),
        ),
        Email(name="from_email", label="From address", required=True),
        Text(name="from_name", label="From name", max_length=120),
        Email(name="reply_to", label="Reply-to"),
        Integer(name="timeout_seconds", label="Timeout (seconds)", default=30, required=True, minimum=1, maximum=300),
        Boolean(name="enabled", label="Enabled", default=True),
    ),
)
# The fifth seed's API said these booleans where this one says `security`; still accepted (JSON only).
SEED_BOOLEANS = (
    Boolean(name="use_tls", label="STARTTLS (use security instead)"),
    Boolean(name="use_ssl", label="SSL/TLS (use security instead)"),
)
CUSTOMER = "customer_id"  # whose settings: set at creation


def _security_from_seed(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with use_tls / use_ssl read as `security` (when security itself is not given)."""
    given = [f for f in SEED_BOOLEANS if f.name in payload]
    if not given:
        return payload
    errors = {}
    for f in given:
        try:
            f.check(payload[f.name])
        except Invalid as exc:
            errors[f.name] = str(exc)
    if errors:
        raise InvalidPayload(f"Not a valid {SMTP_CONFIG.noun}.", errors)
    rest = {name: value for name, value in payload.items() if name not in {f.name for f in SEED_BOOLEANS}}
    if "security" not in rest:
        tls = SmtpSecurity.STARTTLS if payload.get("use_tls") else SmtpSecurity.NONE
        rest["security"] = str(SmtpSecurity.SSL if payload.get("use_ssl") else tls)
    return rest


def scoped(principal: tenancy.Principal, query):
    return principal.scoped(query, SmtpConfig.customer_id)


def visible(principal: tenancy.Principal, config_id: int, *, options=()) -> SmtpConfig:
    config = db.session.get(SmtpConfig, config_id, options=list(options))
    if config is None:
        abort(404, description="No such SMTP config here.")
    principal.check_see(config.customer_id)
    return config


def may_change(principal: tenancy.Principal, config: SmtpConfig | None = None) -> bool:
    """May it change these settings (None: create settings for one of its customers)?"""
    return principal.allows(Role.OPERATOR) if config is None else principal.can_change(config.customer_id)


def require_writer(principal: tenancy.Principal) -> None:
    """403 for a principal that may not change any SMTP settings (viewers, read-only keys)."""
    principal.require(Role.OPERATOR)


def _record(principal: tenancy.Principal, action: str, config: SmtpConfig, changes) -> None:
    customer = config.customer or db.session.get(Customer, config.customer_id)
    audit.record(
        actor=principal.user,
        action=action,
        target=config,
        summary=f"SMTP settings {config.name!r} for {customer.name}",
        changes=changes,
    )


def create(principal: tenancy.Principal, payload: dict[str, Any]) -> SmtpConfig:
    """New settings for the customer `payload` names (customer_id)."""
    require_writer(principal)
    payload = _security_from_seed(payload)
    customer_id = payload.get(CUSTOMER)
    errors = {}
    if not is_id(customer_id) or db.session.get(Customer, customer_id) is None or not principal.can_see(customer_id):
        errors[CUSTOMER] = "No such customer here."
    values = SMTP_CONFIG.validate(payload, also=(CUSTOMER,), refused=errors)
    principal.check_change(customer_id)
    config = SmtpConfig(customer_id=customer_id)
    changes = SMTP_CONFIG.apply(config, values)
    db.session.add(config)
    db.session.flush()
    _record(principal, "smtp.create", config, changes)
    return config


def update(
    principal: tenancy.Principal, config: SmtpConfig, payload: dict[str, Any], *, partial: bool = False
) -> dict[str, Any]:
    """Set the fields of `payload` (every field, the omitted ones at their defaults, unless `partial`; an omitted
    password is kept). Returns {field: [old, new]} of what changed."""
    principal.check_change(config.customer_id)
    payload = _security_from_seed(payload)
    errors = {}
    if CUSTOMER in payload and payload[CUSTOMER] != config.customer_id:
        errors[CUSTOMER] = "Settings stay with their customer: create new ones for another customer."
    current = SMTP_CONFIG.values_of(config)
    values = SMTP_CONFIG.validate(payload, current=current, partial=partial, also=(CUSTOMER,), refused=errors)
    changes = SMTP_CONFIG.apply(config, values)
    if changes:
        db.session.flush()
        _record(principal, "smtp.update", config, changes)
    return changes


def delete(principal: tenancy.Principal, config: SmtpConfig) -> None:
    principal.check_change(config.customer_id)
    _record(principal, "smtp.delete", config, {})
    db.session.delete(config)
    db.session.flush()
