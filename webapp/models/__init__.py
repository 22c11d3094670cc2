"""All models, importable from one place."""

from webapp.models.audit import AuditLog
from webapp.models.base import (
    EVENT_TYPES,
    Channel,
    EventStatus,
    NotificationStatus,
    Priority,
    Role,
    Severity,
    SmtpSecurity,
    TicketStatus,
    utcnow,
)
from webapp.models.customer import Customer, SlaPolicy, SmtpConfig, user_customer
from webapp.models.event import EVENT_DEDUP_KEY, Event, Notification
from webapp.models.sla import BusinessCalendar, Holiday
from webapp.models.template import MessageTemplate
from webapp.models.ticket import Ticket, TimelineEntry
from webapp.models.user import NotificationPreference, PhoneNumber, User
from webapp.models.webhook import ApiKey, WebhookDelivery, WebhookEndpoint, WebhookSource

__all__ = [
    "EVENT_DEDUP_KEY",
    "EVENT_TYPES",
    "ApiKey",
    "AuditLog",
    "BusinessCalendar",
    "Channel",
    "Customer",
    "Event",
    "EventStatus",
    "Holiday",
    "MessageTemplate",
    "Notification",
    "NotificationPreference",
    "NotificationStatus",
    "PhoneNumber",
    "Priority",
    "Role",
    "Severity",
    "SlaPolicy",
    "SmtpConfig",
    "SmtpSecurity",
    "Ticket",
    "TicketStatus",
    "TimelineEntry",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookSource",
    "user_customer",
    "utcnow",
]
