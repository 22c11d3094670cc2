"""All models, importable from one place."""

from webapp.extensions import db
from webapp.models.audit import AuditLog
from webapp.models.base import (
    EventStatus,
    IncidentState,
    NotificationStatus,
    Priority,
    Role,
    Severity,
    SmtpSecurity,
    TicketStatus,
    utcnow,
)
from webapp.models.customer import Customer, SlaPolicy, SmtpConfig, user_customer
from webapp.models.event import EVENT_DEDUP_KEY, Event, Notification, dedup_identity
from webapp.models.heartbeat import Heartbeat
from webapp.models.incident import OPEN_STATES, Incident, IncidentEntry, open_key
from webapp.models.kinds import (
    DEFAULT_CHANNELS,
    EVENT_KINDS,
    EVENT_SOURCES,
    EVENT_TYPES,
    INCIDENT_KINDS,
    INCIDENT_SOURCES,
    INTERNAL_ORIGINS,
    PERSONAL_CHANNELS,
    SENDER_EVENT_KINDS,
    SOURCE_KINDS,
    WEBHOOK_EVENTS,
    WEBHOOK_SOURCE_KINDS,
    Channel,
    EventType,
    Registry,
    RoleDefault,
    SourceKind,
    WebhookEvent,
    webhook_name,
)
from webapp.models.schedule import Rotation, Schedule, ScheduleFeed, ScheduleLayer, ScheduleOverride
from webapp.models.sla import BusinessCalendar, Holiday
from webapp.models.template import MessageTemplate
from webapp.models.ticket import Ticket, TimelineEntry
from webapp.models.user import (
    STORM_EMAIL_LIMIT,
    STORM_SMS_LIMIT,
    STORM_WINDOW_MINUTES,
    NotificationPreference,
    PhoneNumber,
    User,
)
from webapp.models.webhook import ApiKey, WebhookDelivery, WebhookEndpoint, WebhookSource

# Ids are shown (OPS-4), and dedup keys and links are built from them: never hand one out twice. PostgreSQL
# sequences never do; SQLite needs AUTOINCREMENT, or it gives max(id) + 1 again after the newest row is deleted.
for _table in db.metadata.tables.values():
    if list(_table.primary_key.columns.keys()) == ["id"]:
        _table.dialect_options["sqlite"]["autoincrement"] = True

__all__ = [
    "STORM_EMAIL_LIMIT",
    "STORM_SMS_LIMIT",
    "STORM_WINDOW_MINUTES",
    "EVENT_DEDUP_KEY",
    "dedup_identity",
    "EVENT_KINDS",
    "EVENT_SOURCES",
    "EVENT_TYPES",
    "INCIDENT_KINDS",
    "INCIDENT_SOURCES",
    "INTERNAL_ORIGINS",
    "OPEN_STATES",
    "DEFAULT_CHANNELS",
    "PERSONAL_CHANNELS",
    "SENDER_EVENT_KINDS",
    "SOURCE_KINDS",
    "WEBHOOK_EVENTS",
    "WEBHOOK_SOURCE_KINDS",
    "ApiKey",
    "AuditLog",
    "BusinessCalendar",
    "Channel",
    "Customer",
    "Event",
    "EventStatus",
    "EventType",
    "Heartbeat",
    "Holiday",
    "Incident",
    "IncidentEntry",
    "IncidentState",
    "MessageTemplate",
    "Notification",
    "NotificationPreference",
    "NotificationStatus",
    "PhoneNumber",
    "Priority",
    "Registry",
    "Role",
    "Rotation",
    "Schedule",
    "ScheduleFeed",
    "ScheduleLayer",
    "ScheduleOverride",
    "RoleDefault",
    "Severity",
    "SlaPolicy",
    "SmtpConfig",
    "SmtpSecurity",
    "SourceKind",
    "Ticket",
    "TicketStatus",
    "TimelineEntry",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookSource",
    "user_customer",
    "utcnow",
    "open_key",
    "webhook_name",
]
