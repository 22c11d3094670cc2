"""Recording admin changes in the audit log."""

from __future__ import annotations

from flask import has_request_context, request

from webapp.extensions import db
from webapp.models import AuditLog, User


def record(*, actor: User | None, action: str, target: object | None = None, summary: str = "", changes=None) -> None:
    """Add an audit row to the session (the caller commits). `changes` must never hold secrets."""
    db.session.add(
        AuditLog(
            actor_id=actor.id if actor is not None else None,
            action=action,
            target_type=type(target).__name__.lower() if target is not None else None,
            target_id=getattr(target, "id", None),
            summary=summary[:500],
            changes=changes or {},
            ip_address=request.remote_addr if has_request_context() else None,
        )
    )
