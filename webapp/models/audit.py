"""The audit log: who changed what, when, from where."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UtcDateTime, utcnow


class AuditLog(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(sa.String(60))  # e.g. user.create, smtp.update
    target_type: Mapped[str | None] = mapped_column(sa.String(40))
    target_id: Mapped[int | None]
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
    changes: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # never secrets
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        sa.Index("ix_audit_log_created_at", "created_at"),
        sa.Index("ix_audit_log_target", "target_type", "target_id"),
    )
