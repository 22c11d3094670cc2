"""Incidents: one alert's whole life (triggered, acknowledged, resolved), the thing people triage.

Every event a sender tells about the same alert (its first firing, the resends, the resolution, a priority
change, an acknowledgement on the sender's side) is attached to one Incident; escalation, acknowledgements
and the all-clear act on the incident, never on a single event row.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import IncidentState, Severity, UtcDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from webapp.models.user import User

OPEN_STATES = (IncidentState.TRIGGERED.value, IncidentState.ACKNOWLEDGED.value)


def open_key(source: str, customer_id: int | None, key: str) -> str:
    """The identity of an open incident: its source, its customer and its key at the source."""
    return f"{source}:{customer_id or 0}:{key}"[:320]


class Incident(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customer.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(sa.String(32))  # the Event.source of the events that make it
    key: Mapped[str] = mapped_column(sa.String(255))  # its identity at the source: fingerprint, incident id, dedup key
    # "<source>:<customer id or 0>:<key>" while open, NULL once resolved: at most one open incident per alert.
    open_key: Mapped[str | None] = mapped_column(sa.String(320))
    state: Mapped[IncidentState] = mapped_column(str_enum(IncidentState), default=IncidentState.TRIGGERED)
    severity: Mapped[Severity] = mapped_column(str_enum(Severity), default=Severity.INFO)
    severity_rank: Mapped[int] = mapped_column(sa.SmallInteger, default=0)  # Severity.rank: "most severe first"
    event_type: Mapped[str] = mapped_column(sa.String(40), default="alert")
    title: Mapped[str] = mapped_column(sa.String(300))
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    labels: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # annotations and links of the latest firing event
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id", ondelete="SET NULL"), index=True)
    resend_count: Mapped[int] = mapped_column(default=0, server_default="0")  # firing again while open
    triggered_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)  # first firing, or the reopening
    last_event_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    acknowledged_via: Mapped[str | None] = mapped_column(sa.String(80))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    resolved_via: Mapped[str | None] = mapped_column(sa.String(80))
    escalation_level: Mapped[int] = mapped_column(default=0, server_default="0")
    next_escalation_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The escalation policy it walks (chosen when it opens); escalation_level counts the steps taken after the
    # first. NULL: the default policy.
    policy_id: Mapped[int | None] = mapped_column(sa.ForeignKey("escalation_policy.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    __table_args__ = (
        # One open incident per alert: the database decides, so two requests racing open one.
        sa.UniqueConstraint("open_key"),
        sa.Index("ix_incident_source_key", "source", "key", "id"),
        # The console pages by key: newest first, or most severe first, within a state or a customer.
        sa.Index("ix_incident_state_id", "state", "id"),
        sa.Index("ix_incident_state_rank_id", "state", "severity_rank", "id"),
        sa.Index("ix_incident_customer_id_id", "customer_id", "id"),
        sa.Index("ix_incident_customer_state_id", "customer_id", "state", "id"),
        sa.Index("ix_incident_rank_id", "severity_rank", "id"),  # most severe first, every state
        # The open ones (few, beside a long history of resolved ones): the console's default list.
        *(
            sa.Index(
                name,
                *columns,
                postgresql_where=sa.text("state IN ('triggered', 'acknowledged')"),
                sqlite_where=sa.text("state IN ('triggered', 'acknowledged')"),
            )
            for name, columns in (
                ("ix_incident_open_id", ("id",)),
                ("ix_incident_open_rank_id", ("severity_rank", "id")),
                ("ix_incident_open_customer_id", ("customer_id", "id")),
            )
        ),
        sa.Index(
            "ix_incident_escalation",
            "next_escalation_at",
            postgresql_where=sa.text("next_escalation_at IS NOT NULL AND state = 'triggered'"),
            sqlite_where=sa.text("next_escalation_at IS NOT NULL AND state = 'triggered'"),
        ),
        sa.CheckConstraint("resend_count >= 0", name="resend_count_nonnegative"),
    )

    @property
    def code(self) -> str:
        """The code an SMS about this incident carries: "Reply ACK 42"."""
        return str(self.id)

    @property
    def is_open(self) -> bool:
        return self.state != IncidentState.RESOLVED


class IncidentEntry(db.Model):
    """One line of an incident's own timeline (its notifications are read from the Notification rows)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incident.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(30))  # triggered, reopened, acknowledged, resolved, escalated, …
    body: Mapped[str] = mapped_column(sa.Text, default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    via: Mapped[str | None] = mapped_column(sa.String(80))
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("event.id", ondelete="SET NULL"))
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (sa.Index("ix_incident_entry_incident_id_id", "incident_id", "id"),)
