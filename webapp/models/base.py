"""The UTC datetime type, enum helpers and enums shared by all models (the declarative base
lives in extensions.py, beside the `db` built on it)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import sqlalchemy as sa

from webapp.extensions import Base  # noqa: F401  (re-exported: the declarative base of every model)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend; naive values are refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: use an aware datetime (utcnow())")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":  # stored as text; keep it sortable and comparable
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(enum_cls: type[enum.Enum], *, name: str | None = None) -> sa.Enum:
    """Store an enum's values (not names) as a short string with a CHECK constraint.

    `name` names the constraint; give one when a table has two columns of the same enum.
    """
    return sa.Enum(
        enum_cls,
        name=name or enum_cls.__name__.lower(),
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls) + 4,
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "operator": 1, "admin": 2}[self.value]


class Severity(enum.StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    @property
    def ticket_priority(self) -> Priority:
        """The priority of a ticket opened for an event of this severity (and the SLA policy it escalates by)."""
        return {
            Severity.CRITICAL: Priority.URGENT,
            Severity.HIGH: Priority.HIGH,
            Severity.MEDIUM: Priority.NORMAL,
        }.get(self, Priority.LOW)


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def event_severity(self) -> Severity:
        """The severity of the events a ticket of this priority raises (created, updated)."""
        return {
            Priority.LOW: Severity.INFO,
            Priority.NORMAL: Severity.LOW,
            Priority.HIGH: Severity.MEDIUM,
            Priority.URGENT: Severity.HIGH,
        }[self]


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class EventStatus(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    INFO = "info"


class IncidentState(enum.StrEnum):
    """An incident's life: triggered -> acknowledged -> resolved; a resolved incident may be reopened."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        return self != IncidentState.RESOLVED


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"  # in the outbox, not yet handed to the queue
    DEFERRED = "deferred"  # held until deliver_after (quiet hours, digest)
    QUEUED = "queued"  # handed to the queue, or waiting for a retry at next_attempt_at
    SENDING = "sending"  # claimed by a worker
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class SmtpSecurity(enum.StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"
