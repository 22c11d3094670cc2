"""The kinds every layer names, each defined once: event types, the event names outgoing webhooks carry,
webhook source kinds (and the other origins of events), and channels.

Everything that lists a kind derives it from here: form choices, API enums and validation messages,
OpenAPI enums, check constraints, the role defaults of routing, the SLA severities, the parsers' table
(`webapp.sources.PARSERS`), the webhooks' /test answer and the outgoing-webhook names. Adding an event
type or a source kind is one entry here (plus, for a source, its parser module under webapp/sources and
its route under webapp/webhooks, and a migration when it gets WebhookSource rows: the `kind_known` check
constraint is derived from this registry, so the database must learn the new name too).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from webapp.models.base import Role, Severity


class _Named(Protocol):
    name: str
    label: str


K = TypeVar("K", bound=_Named)


class Registry(Generic[K]):
    """Kinds in a fixed order, looked up by name. Iterating yields the kinds; `names` their names."""

    def __init__(self, *kinds: K):
        self._by_name: dict[str, K] = {}
        for kind in kinds:
            if kind.name in self._by_name:
                raise ValueError(f"{kind.name!r} is defined twice")
            self._by_name[kind.name] = kind

    def __iter__(self) -> Iterator[K]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name  # False for anything a JSON body may hold

    def __getitem__(self, name: str) -> K:
        return self._by_name[name]

    def get(self, name: object) -> K | None:
        return self._by_name.get(name) if isinstance(name, str) else None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def choices(self) -> list[tuple[str, str]]:
        """(name, label) pairs for a form's choices."""
        return [(kind.name, kind.label) for kind in self]

    def where(self, test: Callable[[K], bool]) -> Registry[K]:
        return Registry(*(kind for kind in self if test(kind)))

    def one_of(self) -> str:
        """The names as a validation message lists them: "a, b, c"."""
        return ", ".join(self._by_name)


# --- channels --------------------------------------------------------------------------------


class Channel(enum.StrEnum):
    """How a notification travels. web, email, SMS and voice (a phone call) reach a person (their preferences
    choose among them); webhook reaches an outgoing endpoint (its filter chooses the events)."""

    WEB = "web"
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    VOICE = "voice"

    @property
    def label(self) -> str:
        return {"web": "in-app (web)", "email": "email", "sms": "SMS", "webhook": "webhook", "voice": "phone call"}[
            self.value
        ]

    @property
    def per_person(self) -> bool:
        return self is not Channel.WEBHOOK

    @property
    def on_by_default(self) -> bool:
        """Enabled for a person who never chose: a phone call (at 3 am) is asked for, never assumed."""
        return self.per_person and self is not Channel.VOICE


PERSONAL_CHANNELS: tuple[Channel, ...] = tuple(c for c in Channel if c.per_person)  # web, email, sms, voice
DEFAULT_CHANNELS: tuple[Channel, ...] = tuple(c for c in Channel if c.on_by_default)  # web, email, sms


# --- outgoing webhook events -----------------------------------------------------------------


@dataclass(frozen=True)
class WebhookEvent:
    """An event name an outgoing webhook carries (X-OpsRelay-Event and "event" in the body); endpoint
    filters are lists of these names."""

    name: str
    label: str  # what it means, for the endpoint page


WEBHOOK_EVENTS: Registry[WebhookEvent] = Registry(
    WebhookEvent("incident.triggered", "an incident opens: an alert fires, a job fails (or fires again once resolved)"),
    WebhookEvent("incident.acknowledged", "someone acknowledged an incident (on any path, or at the sender)"),
    WebhookEvent("incident.resolved", "an incident resolves: the sender said so, or someone resolved it"),
    WebhookEvent("event.created", "a report arrives that opens no incident: a job succeeded, a backup finished"),
    WebhookEvent("event.resolved", "a report that opens no incident says it is over"),
    WebhookEvent("ticket.created", "a ticket is opened"),
    WebhookEvent("ticket.updated", "a ticket changes (status, priority, assignee, comment)"),
    WebhookEvent("ticket.sla_warning", "a ticket's SLA deadline is near"),
    WebhookEvent("ticket.sla_breach", "a ticket missed its SLA deadline"),
    WebhookEvent("timeline.updated", "a ticket's timeline gained an entry from a sender (a merged pull request)"),
)


# --- event types -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleDefault:
    """What a role's default (a user without a preference row) subscribes to for one event type."""

    least: Severity  # events below this severity are not for the role
    channels: Mapping[Channel, Severity]  # the channels used, each with its minimum severity


@dataclass(frozen=True)
class EventType:
    name: str  # Event.event_type
    label: str  # for pages
    plural: str  # a digest's "5 <plural>"
    webhook: str = "event.created"  # the outgoing-webhook name (a WEBHOOK_EVENTS name)
    webhook_resolved: str | None = "event.resolved"  # the name once resolved; None: always `webhook`
    webhook_acknowledged: str | None = None  # the name of an acknowledgement (incidents)
    role_defaults: Mapping[Role, RoleDefault] = field(default_factory=dict)
    opens_incident: bool = False  # a problem someone must handle: its events make an Incident
    sla_severity: Severity | None = None  # an SLA event: the severity it is raised with
    about_ticket: bool = False  # raised for a ticket (its templates may use {{ ticket }})
    from_senders: bool = False  # the generic webhook and the events API accept it

    def webhook_name(self, *, resolved: bool) -> str:
        return self.webhook_resolved if resolved and self.webhook_resolved else self.webhook


_INCIDENT = {
    "webhook": "incident.triggered",
    "webhook_acknowledged": "incident.acknowledged",
    "webhook_resolved": "incident.resolved",
    "opens_incident": True,
}


_S = Severity
_EVERY_CHANNEL = {Channel.WEB: _S.INFO, Channel.EMAIL: _S.INFO, Channel.SMS: _S.CRITICAL}  # SMS when critical
_ALL = RoleDefault(_S.INFO, _EVERY_CHANNEL)  # admins: every failure; operators: every ticket event
_READ_ONLY = RoleDefault(_S.INFO, {Channel.WEB: _S.INFO, Channel.EMAIL: _S.INFO})  # viewers: read-only results

EVENT_KINDS: Registry[EventType] = Registry(
    EventType(
        "alert",
        "Alert",
        "alerts",
        from_senders=True,
        **_INCIDENT,
        role_defaults={
            Role.ADMIN: RoleDefault(_S.CRITICAL, {Channel.SMS: _S.CRITICAL}),  # the first seed's page
            Role.OPERATOR: RoleDefault(
                _S.HIGH, {Channel.WEB: _S.HIGH, Channel.EMAIL: _S.HIGH, Channel.SMS: _S.CRITICAL}
            ),
        },
    ),
    EventType(
        "sla_warning",
        "SLA warning",
        "SLA warnings",
        webhook="ticket.sla_warning",
        webhook_resolved=None,
        role_defaults={Role.OPERATOR: _ALL},
        sla_severity=_S.MEDIUM,
        about_ticket=True,
    ),
    EventType(
        "sla_breach",
        "SLA breach",
        "SLA breaches",
        webhook="ticket.sla_breach",
        webhook_resolved=None,
        role_defaults={Role.ADMIN: _ALL, Role.OPERATOR: _ALL},
        sla_severity=_S.HIGH,
        about_ticket=True,
    ),
    EventType(
        "job_success", "Job succeeded", "finished jobs", from_senders=True, role_defaults={Role.VIEWER: _READ_ONLY}
    ),
    EventType(
        "job_failed", "Job failed", "failed jobs", from_senders=True, role_defaults={Role.ADMIN: _ALL}, **_INCIDENT
    ),
    EventType(
        "job_partial",
        "Job partly failed",
        "partly failed jobs",
        from_senders=True,
        role_defaults={Role.ADMIN: _ALL},
        **_INCIDENT,
    ),
    EventType(
        "compliance_violation",
        "Compliance violation",
        "compliance violations",
        from_senders=True,
        **_INCIDENT,
        role_defaults={Role.ADMIN: _ALL, Role.VIEWER: _READ_ONLY},
    ),
    EventType(
        "scheduled_backup_complete",
        "Scheduled backup complete",
        "finished backups",
        from_senders=True,
        role_defaults={Role.VIEWER: _READ_ONLY},
    ),
    EventType("test", "Test", "test events"),
    EventType(
        "ticket_created",
        "Ticket created",
        "new tickets",
        webhook="ticket.created",
        webhook_resolved=None,
        role_defaults={Role.OPERATOR: _ALL},
        about_ticket=True,
    ),
    EventType(
        "ticket_updated",
        "Ticket updated",
        "ticket updates",
        webhook="ticket.updated",
        webhook_resolved=None,
        role_defaults={Role.OPERATOR: _ALL},
        about_ticket=True,
    ),
    EventType(
        "sms_budget",
        "SMS budget reached",
        "SMS budget notices",
        webhook_resolved=None,
        role_defaults={Role.ADMIN: _READ_ONLY, Role.OPERATOR: _READ_ONLY},  # email and in-app, never SMS
    ),
    EventType(
        "shift_start",
        "On-call shift starts",
        "on-call hand-offs",
        webhook_resolved=None,
        # the incoming person only (routed to them as its audience): in-app and email, never SMS by default
        role_defaults={Role.ADMIN: _READ_ONLY, Role.OPERATOR: _READ_ONLY, Role.VIEWER: _READ_ONLY},
    ),
    EventType(
        "timeline_updated",
        "Timeline updated",
        "timeline entries",
        webhook="timeline.updated",
        webhook_resolved=None,
        about_ticket=True,
    ),
)
EVENT_TYPES: tuple[str, ...] = EVENT_KINDS.names  # Event.event_type values every part agrees on
SENDER_EVENT_KINDS: Registry[EventType] = EVENT_KINDS.where(lambda kind: kind.from_senders)
INCIDENT_KINDS: Registry[EventType] = EVENT_KINDS.where(lambda kind: kind.opens_incident)


def webhook_name(event_type: str, *, resolved: bool, acknowledged: bool = False) -> str:
    """The outgoing-webhook name of an event; a type outside the registry (an older row) is sent as an alert is."""
    kind = EVENT_KINDS.get(event_type) or EVENT_KINDS["alert"]
    if acknowledged and kind.webhook_acknowledged:
        return kind.webhook_acknowledged
    return kind.webhook_name(resolved=resolved)


# --- where events come from --------------------------------------------------------------------


@dataclass(frozen=True)
class SourceKind:
    """A sender that posts webhooks to /api/v1/webhooks/<name>, parsed by webapp.sources.<parser>."""

    name: str
    label: str
    parser: str  # the module under webapp/sources whose pure parse() reads its body
    needs_source_row: bool  # authenticated by a WebhookSource row (its secret, customer, options)
    signature_header: str | None  # the header carrying the HMAC signature; None: a bearer token
    secret_required: bool  # a source row must have a signing secret


SOURCE_KINDS: Registry[SourceKind] = Registry(
    SourceKind("alertmanager", "Prometheus Alertmanager", "alertmanager", False, None, False),
    SourceKind("pagerduty", "PagerDuty", "pagerduty", True, "X-PagerDuty-Signature", True),
    SourceKind("github", "GitHub", "github", True, "X-Hub-Signature-256", True),
    SourceKind("generic", "generic (any sender)", "generic", True, "X-OpsRelay-Signature", False),
)
WEBHOOK_SOURCE_KINDS: Registry[SourceKind] = SOURCE_KINDS.where(lambda kind: kind.needs_source_row)


@dataclass(frozen=True)
class Origin:
    """Where events come from besides the webhook senders: OpsRelay's own producers."""

    name: str
    label: str
    opens_incidents: bool = False  # its alerts are problems of their own (the events API), not news about one


INTERNAL_ORIGINS: Registry[Origin] = Registry(
    Origin("api", "the events API", opens_incidents=True),
    Origin("sla", "SLA deadlines"),
    Origin("ticket", "tickets"),
    Origin("escalation", "escalation steps"),
    Origin("ack", "acknowledgement notices"),
    Origin("resolve", "incidents resolved by a person"),
    Origin("test", "test events"),
    Origin("heartbeat", "missed heartbeats (a check-in that did not come)", opens_incidents=True),
    Origin("budget", "SMS budgets (a customer's monthly SMS spend reached its budget)"),
    Origin("schedule", "on-call hand-offs (the person whose shift starts is told)"),
)
EVENT_SOURCES: tuple[str, ...] = SOURCE_KINDS.names + INTERNAL_ORIGINS.names  # Event.source values
INCIDENT_SOURCES: frozenset[str] = frozenset(
    SOURCE_KINDS.names + INTERNAL_ORIGINS.where(lambda origin: origin.opens_incidents).names
)  # whose alerts open incidents; escalation steps, SLA and ack notices join the incident they are about
