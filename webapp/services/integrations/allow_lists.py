"""The IP allow-list of a webhook source or an API key (`allowed_ips`): read, replaced and audited the same way
for both. Checking a request against it is webapp.security.require_address."""

from __future__ import annotations

from collections.abc import Callable

from webapp import ip_allowlist
from webapp.models import User
from webapp.services import audit


def networks(value: str | list[str] | None, error: Callable[[str, str], ValueError]) -> list[str]:
    """The networks in `value` (CIDR: a comma-separated line or a list), or `error("allowed_ips", why)`."""
    try:
        return ip_allowlist.parse(value)
    except ValueError as exc:
        raise error("allowed_ips", str(exc)) from None


def replace(
    row, value: str | list[str] | None, *, error: Callable[[str, str], ValueError], actor: User | None, label: str
) -> bool:
    """Set the row's allow-list (empty: anywhere), audited as `<table>.allowed_ips`; False if unchanged."""
    new = networks(value, error)
    old = list(row.allowed_ips or [])
    if new == old:
        return False
    audit.record(
        actor=actor,
        action=f"{row.__tablename__}.allowed_ips",
        target=row,
        summary=f"{label}: accepted from {', '.join(new) or 'anywhere'}",
        changes={"allowed_ips": [old, new]},
    )
    row.allowed_ips = new
    return True
