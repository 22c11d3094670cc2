"""A customer's chat channels (Slack, Microsoft Teams): the fields people set (CHAT_CHANNEL), and every write.

The chat channel pages call these functions, which apply the tenant boundary, validate through CHAT_CHANNEL,
audit and flush (the caller commits). Who: chat channels are a customer's wiring, like its outgoing webhooks
(issue 18): its operators and admins read and change them (webapp.tenancy's rule for a customer's rows);
viewers and read-only keys get 403, another customer's channel is a 404.

The incoming webhook URL is the channel's credential (whoever has it posts into the channel): write-only like
an SMTP password, encrypted at rest, never shown back -- pages say only that one is set and its last four
characters. It must be an http(s) URL the egress policy lets OpsRelay reach (checked again when posting).
"""

from __future__ import annotations

from typing import Any

from flask import abort

from webapp import tenancy
from webapp.extensions import db
from webapp.fields import KEEP, Boolean, Choice, SecretUrl, Spec, Text
from webapp.inputs import is_id
from webapp.models import CHAT_CHANNELS, ChatChannel, Customer, Role, Severity
from webapp.security import decrypt_secret, encrypt_secret
from webapp.services import audit

URL_REQUIRED = "Enter the channel's incoming webhook URL."

CHAT_CHANNEL = Spec(
    "chat channel",
    (
        Choice(
            name="kind",
            label="Chat tool",
            choices=tuple(str(c) for c in CHAT_CHANNELS),
            labels={str(c): c.label for c in CHAT_CHANNELS},
            default=str(CHAT_CHANNELS[0]),
            width=4,
        ),
        Text(name="name", label="Name", required=True, max_length=120, help="e.g. #ops-alerts", width=8),
        SecretUrl(
            name="webhook_url",
            label="Incoming webhook URL",
            attr="webhook_url_encrypted",
            seal=encrypt_secret,
            help="Leave empty to keep the stored URL. It is stored encrypted and never shown again.",
        ),
        Choice(
            name="min_severity",
            label="Minimum severity",
            choices=tuple(Severity),
            default=Severity.HIGH,
            width=6,
        ),
        Boolean(name="enabled", label="Enabled", default=True, width=6),
    ),
)
CUSTOMER = "customer_id"  # whose channel: set at creation


def url_hint(row: ChatChannel) -> str | None:
    """What pages may say of the stored URL: its last four characters; None when none is stored."""
    return secret_hint(row.webhook_url_encrypted)


def secret_hint(token: str | None) -> str | None:
    """ "set, ending …abcd" for an encrypted secret (unreadable: "set"); None when none is stored."""
    if not token:
        return None
    try:
        return f"set, ending …{decrypt_secret(token)[-4:]}"
    except ValueError:
        return "set (unreadable with this SECRET_KEY)"


def scoped(principal: tenancy.Principal, query):
    require_writer(principal)
    return principal.scoped(query, ChatChannel.customer_id)


def visible(principal: tenancy.Principal, channel_id: int) -> ChatChannel:
    require_writer(principal)
    row = db.session.get(ChatChannel, channel_id)
    if row is None:
        abort(404, description="No such chat channel here.")
    principal.check_see(row.customer_id)
    return row


def may_change(principal: tenancy.Principal, row: ChatChannel | None = None) -> bool:
    """May it change this channel (None: add channels for one of its customers)?"""
    return principal.allows(Role.OPERATOR) if row is None else principal.can_change(row.customer_id)


def require_writer(principal: tenancy.Principal) -> None:
    """403 for a principal that may not see or change chat channels (viewers, read-only keys)."""
    principal.require(Role.OPERATOR)


def _record(principal: tenancy.Principal, action: str, row: ChatChannel, changes) -> None:
    customer = db.session.get(Customer, row.customer_id)
    audit.record(
        actor=principal.user,
        action=action,
        target=row,
        summary=f"{row.kind} chat channel {row.name!r} for {customer.name if customer else row.customer_id}",
        changes=changes,
    )


def create(principal: tenancy.Principal, payload: dict[str, Any]) -> ChatChannel:
    """A new chat channel for the customer `payload` names (customer_id); its webhook URL is required."""
    require_writer(principal)
    customer_id = payload.get(CUSTOMER)
    errors = {}
    if not is_id(customer_id) or db.session.get(Customer, customer_id) is None or not principal.can_see(customer_id):
        errors[CUSTOMER] = "No such customer here."
    if not payload.get("webhook_url"):
        errors["webhook_url"] = URL_REQUIRED
    values = CHAT_CHANNEL.validate(payload, also=(CUSTOMER,), refused=errors)
    principal.check_change(customer_id)
    row = ChatChannel(customer_id=customer_id)
    changes = CHAT_CHANNEL.apply(row, values)
    db.session.add(row)
    db.session.flush()
    _record(principal, "chat_channel.create", row, changes)
    return row


def update(principal: tenancy.Principal, row: ChatChannel, payload: dict[str, Any]) -> dict[str, Any]:
    """Set the fields of `payload` (an omitted or empty URL keeps the stored one). Returns what changed."""
    principal.check_change(row.customer_id)
    errors = {}
    if CUSTOMER in payload and payload[CUSTOMER] != row.customer_id:
        errors[CUSTOMER] = "A chat channel stays with its customer: add one for the other customer."
    values = CHAT_CHANNEL.validate(payload, current=CHAT_CHANNEL.values_of(row), also=(CUSTOMER,), refused=errors)
    if values.get("webhook_url") == "":
        values["webhook_url"] = KEEP  # a channel always has its URL: replace it, never clear it
    changes = CHAT_CHANNEL.apply(row, values)
    if changes:
        db.session.flush()
        _record(principal, "chat_channel.update", row, changes)
    return changes


def delete(principal: tenancy.Principal, row: ChatChannel) -> None:
    principal.check_change(row.customer_id)
    _record(principal, "chat_channel.delete", row, {})
    db.session.delete(row)
    db.session.flush()
