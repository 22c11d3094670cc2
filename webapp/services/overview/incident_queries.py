"""The incidents console's query, for the page and the API alike: who sees which incident, the filters
(state, severity, customer, source, a label's value, paged me, unacknowledged), newest or most severe first,
keyset pages (one indexed range scan whatever the depth), and what each row shows beside the incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import Event, Incident, IncidentEntry, IncidentState, Notification, NotificationStatus, User
from webapp.paging import KeysetPage, keyset_page

if TYPE_CHECKING:
    from webapp.tenancy import Principal

ORDERS = ("newest", "severity")  # newest first (the row id), most severe first (severity rank, then newest)


@dataclass(frozen=True)
class IncidentFilter:
    states: tuple[str, ...] = ()  # IncidentState values; empty: any
    severities: tuple[str, ...] = ()  # Severity values; empty: any
    customer_id: int | None = None
    source: str | None = None
    label: tuple[str, str] | None = None  # (name, value): labels["service"] == "checkout"
    paged_user_id: int | None = None  # incidents that paged this person ("paged me")
    unacknowledged: bool = False  # still triggered: nobody took it
    order: str = "newest"


def paged(user_id: int):
    """The ids of the incidents a notification (sent or not: a decision about them) was addressed to `user_id`."""
    return (
        db.select(Event.incident_id)
        .join(Notification, Notification.event_id == Event.id)
        .where(Notification.user_id == user_id, Event.incident_id.is_not(None))
    )


def visible_to(principal: Principal, query):
    """The incidents of `query` the reader sees: its customers' incidents, and those that paged it (as events:
    delivery_log.events_visible_to)."""
    own = principal.own_user_id
    return principal.scoped(query, Incident.customer_id, also=Incident.id.in_(paged(own)) if own else None)


def keys(order: str) -> tuple:
    """The keyset of an ordering: the row id (newest first), or the severity rank and the id."""
    return (Incident.severity_rank, Incident.id) if order == "severity" else (Incident.id,)


def filtered(f: IncidentFilter, principal: Principal):
    query = visible_to(principal, db.select(Incident))
    if f.states:
        query = query.where(Incident.state.in_(f.states))
    if f.unacknowledged:
        query = query.where(Incident.state == IncidentState.TRIGGERED.value)
    if f.severities:
        query = query.where(Incident.severity.in_(f.severities))
    if f.customer_id is not None:
        query = query.where(Incident.customer_id == f.customer_id)
    if f.source is not None:
        query = query.where(Incident.source == f.source)
    if f.label is not None:
        name, value = f.label
        query = query.where(Incident.labels[name].as_string() == value)
    if f.paged_user_id is not None:
        reached = paged(f.paged_user_id).where(Notification.status != NotificationStatus.SUPPRESSED)
        query = query.where(Incident.id.in_(reached))
    return query.options(selectinload(Incident.acknowledged_by), selectinload(Incident.resolved_by))


def page(f: IncidentFilter, *, principal: Principal, before=None, after=None, per_page: int = 50) -> KeysetPage:
    """One page of the console: `before`/`after` are keys of `keys(f.order)` (an id, or (rank, id))."""
    return keyset_page(filtered(f, principal), *keys(f.order), per_page=per_page, before=before, after=after)


def paged_names(incident_ids: list[int]) -> dict[int, list[str]]:
    """Who each incident paged (a page went out, or is on its way), by name: one statement for a whole page."""
    if not incident_ids:
        return {}
    rows = db.session.execute(
        db.select(Event.incident_id, User.name)
        .join(Notification, Notification.event_id == Event.id)
        .join(User, User.id == Notification.user_id)
        .where(Event.incident_id.in_(incident_ids), Notification.status != NotificationStatus.SUPPRESSED)
        .distinct()
        .order_by(Event.incident_id, User.name)
    ).all()
    names: dict[int, list[str]] = {}
    for incident_id, name in rows:
        names.setdefault(incident_id, []).append(name)
    return names


def timeline(incident: Incident) -> list[IncidentEntry]:
    return list(
        db.session.scalars(
            db.select(IncidentEntry).where(IncidentEntry.incident_id == incident.id).order_by(IncidentEntry.id)
        )
    )


def notifications_query(incident: Incident):
    """Every notification about the incident (its pages, escalation steps, notices), oldest first; the caller
    limits it to what the reader sees (delivery_log.visible_to)."""
    events = db.select(Event.id).where(Event.incident_id == incident.id)
    return db.select(Notification).where(Notification.event_id.in_(events)).order_by(Notification.id)
