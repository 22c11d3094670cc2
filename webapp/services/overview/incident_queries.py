"""Reading incidents for the pages (and the API): the console's filters and keyset pages, the rows' people,
one incident's merged timeline, the dashboard's open incidents and counts.

Tenancy: a reader sees the incidents of its customers, those of no customer only if it sees every customer
(the operations team's), and any incident that notified it (a person may read what paged them). A page is a
fixed number of statements whatever its length: the incidents (one keyset range on an index: state,id /
state,severity_rank,id / customer_id,id …), then the people paged and the customers' names for those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import func
from sqlalchemy.orm import joinedload

from webapp.extensions import db
from webapp.models import (
    INCIDENT_SOURCES,
    Channel,
    Event,
    EventStatus,
    Incident,
    IncidentEntry,
    IncidentState,
    Notification,
    NotificationStatus,
    Severity,
    User,
    utcnow,
)
from webapp.paging import KeysetPage, keyset_page
from webapp.services.events.incidents import ACK_SOURCE, RESOLVE_SOURCE
from webapp.services.people import customers

if TYPE_CHECKING:
    from webapp.tenancy import Principal

S = NotificationStatus
OPEN = (IncidentState.TRIGGERED.value, IncidentState.ACKNOWLEDGED.value)
STATES = ("open", "triggered", "acknowledged", "resolved", "all")  # the console's state filter; "open" first
ORDERS = ("newest", "severity")
# A notification "paged" its person when it went out or is on its way (not suppressed, not failed).
PAGED = (S.PENDING, S.DEFERRED, S.QUEUED, S.SENDING, S.SENT, S.DELIVERED)
DISTINGUISHING = ("service", "instance", "job")  # the labels that tell two firings of one alert name apart
LINK_KEYS = ("generatorURL", "runbook_url", "html_url", "job_url", "url", "externalURL")
MAX_TIMELINE = 500


@dataclass(frozen=True)
class IncidentFilter:
    state: str = "open"  # one of STATES
    severity: Severity | None = None
    customer_id: int | None = None
    source: str | None = None
    label: str | None = None  # a service, instance or job label's value
    paged_user_id: int | None = None  # "paged me": incidents that notified this user
    unacknowledged: bool = False  # triggered only
    order: str = "newest"  # newest (id) or severity (severity_rank, id)


@dataclass
class IncidentRow:
    incident: Incident
    customer: str | None
    paged: list[str] = field(default_factory=list)  # names of the people its pages went to

    @property
    def labels(self) -> list[tuple[str, str]]:
        return distinguishing(self.incident)

    @property
    def acked_by(self) -> str | None:
        incident = self.incident
        if incident.acknowledged_at is None:
            return None
        return incident.acknowledged_by.name if incident.acknowledged_by else incident.acknowledged_via


def distinguishing(incident: Incident) -> list[tuple[str, str]]:
    labels = incident.labels or {}
    return [(key, str(labels[key])) for key in DISTINGUISHING if labels.get(key) not in (None, "")]


def age(incident: Incident, now: datetime | None = None) -> str:
    """How long since it triggered (or, once resolved, how long it lasted)."""
    end = incident.resolved_at or now or utcnow()
    seconds = max(int((end - incident.triggered_at).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def paged_by(user_id: int, *, pages_only: bool = False):
    """The ids of the incidents whose events notified `user_id` (a subquery); `pages_only`: only pages about
    its firing that went out or are on their way (the console's "paged me"), not notices or suppressed rows."""
    query = (
        db.select(Event.incident_id)
        .join(Notification, Notification.event_id == Event.id)
        .where(Notification.user_id == user_id, Event.incident_id.is_not(None))
    )
    if pages_only:
        query = query.where(Event.status == EventStatus.FIRING, Notification.status.in_(PAGED))
    return query


def visible(principal: Principal, query):
    """`query` (of Incident) limited to what the reader sees (tenancy, and the incidents that paged it)."""
    own = principal.own_user_id
    also = Incident.id.in_(paged_by(own)) if own is not None and not principal.sees_all else None
    return principal.scoped(query, Incident.customer_id, also=also)


def get(principal: Principal, incident_id: int) -> Incident | None:
    """One incident the reader sees; None for one it does not (the page answers 404)."""
    return db.session.scalar(
        visible(principal, db.select(Incident).where(Incident.id == incident_id)).options(
            joinedload(Incident.acknowledged_by), joinedload(Incident.resolved_by)
        )
    )


def _filtered(f: IncidentFilter, principal: Principal):
    query = visible(
        principal,
        db.select(Incident).options(joinedload(Incident.acknowledged_by), joinedload(Incident.resolved_by)),
    )
    if f.unacknowledged or f.state == "triggered":
        query = query.where(Incident.state == IncidentState.TRIGGERED.value)
    elif f.state == "open":
        query = query.where(Incident.state.in_(OPEN))
    elif f.state in ("acknowledged", "resolved"):
        query = query.where(Incident.state == f.state)
    if f.severity is not None:
        query = query.where(Incident.severity_rank == f.severity.rank)
    if f.customer_id is not None:
        query = query.where(Incident.customer_id == f.customer_id)
    if f.source:
        query = query.where(Incident.source == f.source)
    if f.label:
        query = query.where(
            db.or_(*(Incident.labels[key].as_string() == f.label for key in DISTINGUISHING)),
        )
    if f.paged_user_id is not None:
        query = query.where(Incident.id.in_(paged_by(f.paged_user_id, pages_only=True)))
    return query


def page(
    f: IncidentFilter,
    *,
    principal: Principal,
    before=None,
    after=None,
    per_page: int = 50,
) -> KeysetPage:
    """Newest first (id) or most severe first (severity_rank, id): three statements per page, whatever its
    length or depth. The bounds are an id, or (rank, id) for the severity order (see `parse_bound`)."""
    keys = (Incident.severity_rank, Incident.id) if f.order == "severity" else (Incident.id,)
    found = keyset_page(_filtered(f, principal), *keys, per_page=per_page, before=before, after=after)
    return replace(found, items=rows(found.items))


def rows(incidents: list[Incident]) -> list[IncidentRow]:
    """The incidents with their customers' names and the people paged (two statements for any number)."""
    if not incidents:
        return []
    ids = [i.id for i in incidents]
    paged: dict[int, list[str]] = {}
    for incident_id, name in db.session.execute(
        db.select(Event.incident_id, User.name)
        .join(Notification, Notification.event_id == Event.id)
        .join(User, User.id == Notification.user_id)
        .where(
            Event.incident_id.in_(ids),
            Event.status == EventStatus.FIRING,
            Notification.status.in_(PAGED),
            Notification.channel != Channel.WEBHOOK,
        )
        .distinct()
        .order_by(Event.incident_id, User.name)
    ):
        paged.setdefault(incident_id, []).append(name)
    names = customers.names_of(i.customer_id for i in incidents)
    return [IncidentRow(i, names.get(i.customer_id), paged.get(i.id, [])) for i in incidents]


def parse_bound(raw: str | None, order: str):
    """A page bound from the query string: an id ("123"), or "rank.id" ("4.123") for the severity order;
    anything else is as if absent."""
    if not raw:
        return None
    if order == "severity":
        rank, _, row_id = raw.partition(".")
        if rank.isdigit() and row_id.isdigit() and int(rank) < len(Severity) and 0 < int(row_id) < 2**63:
            return int(rank), int(row_id)
        return None
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**63 else None


def format_bound(bound) -> str | None:
    if bound is None:
        return None
    return ".".join(str(part) for part in bound) if isinstance(bound, tuple) else str(bound)


def sources() -> list[str]:
    """The sources the console can filter by: those whose events open incidents (the registry, no scan)."""
    return sorted(INCIDENT_SOURCES)


# --- one incident ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # an IncidentEntry kind, or "notification"
    text: str
    actor: str | None = None
    notification: Notification | None = None


def first_event(incident: Incident) -> Event | None:
    """The firing that opened the incident (what "why not notified?" asks about)."""
    return db.session.scalar(
        db.select(Event)
        .where(
            Event.incident_id == incident.id,
            Event.status == EventStatus.FIRING,
            Event.source.not_in((ACK_SOURCE, RESOLVE_SOURCE, "escalation")),
        )
        .order_by(Event.id)
        .limit(1)
    )


def timeline(incident: Incident, *, notifications_query) -> list[TimelineItem]:
    """The incident's entries and each notification of its events, oldest first. `notifications_query` is
    the reader's view of Notification (tenancy: delivery_log.visible_to)."""
    entries = list(
        db.session.execute(
            db.select(IncidentEntry, User.name)
            .outerjoin(User, User.id == IncidentEntry.actor_id)
            .where(IncidentEntry.incident_id == incident.id)
            .order_by(IncidentEntry.id)
            .limit(MAX_TIMELINE)
        )
    )
    notifications = list(
        db.session.scalars(
            notifications_query.options(joinedload(Notification.user), joinedload(Notification.event))
            .where(Notification.event_id.in_(db.select(Event.id).where(Event.incident_id == incident.id)))
            .order_by(Notification.id)
            .limit(MAX_TIMELINE)
        )
    )
    items = [TimelineItem(e.created_at, e.kind, e.body, name) for e, name in entries]
    for n in notifications:
        about = n.event.title if n.event is not None else ""
        items.append(TimelineItem(n.created_at, "notification", about, n.user.name if n.user else None, n))
    return sorted(items, key=lambda item: (item.at, item.kind != "notification"))


def links(incident: Incident) -> list[tuple[str, str]]:
    """Its http(s) links (the sender's generatorURL, html_url, job_url; a runbook_url annotation)."""
    data = incident.data or {}
    annotations = data.get("annotations") if isinstance(data.get("annotations"), dict) else {}
    found = []
    for key in LINK_KEYS:
        value = data.get(key, annotations.get(key))
        if isinstance(value, str) and is_web_link(value):
            found.append((key, value))
    return found


def is_web_link(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# --- the dashboard -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenCounts:
    triggered: int
    acknowledged: int
    critical: int  # open and critical


def open_incidents(principal: Principal, *, limit: int = 10) -> tuple[list[IncidentRow], OpenCounts]:
    """The open incidents at the top of the dashboard, most severe and newest first, and the counts.

    An open incident of no customer is a shared headline (tenancy): everyone sees its title here."""
    query = principal.scoped(
        db.select(Incident)
        .options(joinedload(Incident.acknowledged_by))
        .where(Incident.state.in_(OPEN))
        .order_by(Incident.severity_rank.desc(), Incident.id.desc())
        .limit(limit),
        Incident.customer_id,
        shared=True,
    )
    found = rows(list(db.session.scalars(query)))
    counts = db.session.execute(
        principal.scoped(
            db.select(
                func.count().filter(Incident.state == IncidentState.TRIGGERED.value),
                func.count().filter(Incident.state == IncidentState.ACKNOWLEDGED.value),
                func.count().filter(Incident.severity_rank == Severity.CRITICAL.rank),
            ).where(Incident.state.in_(OPEN)),
            Incident.customer_id,
            shared=True,
        )
    ).one()
    return found, OpenCounts(*(int(c or 0) for c in counts))
