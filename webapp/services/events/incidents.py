"""Incidents: each new event joins the incident of its alert, and an incident changes state in one way
whoever acts (the sender, a person on any page, the API, an SMS reply, an escalation step's code).

Identity: an event of an incident kind (kinds.INCIDENT_KINDS) carries its sender's `incident_key` (an
Alertmanager fingerprint, a PagerDuty incident id, a generic sender's dedup key); there is at most one open
incident per (source, customer, key) — a unique partial index, so two racing requests open one. A firing
event opens an incident when none is open (a new one after a resolution: "fired again"), else it is a resend
of the open one: counted, attached, never paged twice. A resolution, an acknowledgement or a priority change
from the sender acts on the open incident and pages nobody as a new alert.

One effect (`acknowledge`, `resolve`): escalation stops at once (next_escalation_at cleared; the sweep takes
triggered incidents only), whatever is still waiting about the incident is suppressed, and those already
reached are told on their channels (acknowledged: who took it; resolved: the all-clear, per their
notify_on_resolve, without an ACK line). Each change is an Event of the incident (source "ack" or "resolve"
when a person acted) so outgoing webhooks say incident.acknowledged / incident.resolved, and an entry in the
incident's timeline. Linked tickets are kept in step by services.inbound.acks, the layer that knows tickets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from webapp import metrics, outbox
from webapp.extensions import db
from webapp.models import (
    EVENT_KINDS,
    Channel,
    Event,
    EventStatus,
    Incident,
    IncidentEntry,
    IncidentState,
    Notification,
    NotificationStatus,
    User,
    dedup_identity,
    open_key,
    utcnow,
)
from webapp.services import audit, bulk
from webapp.services.routing import decisions, digest, outgoing
from webapp.sources.normalised import NormalisedEvent

S = NotificationStatus
ACK_SOURCE = "ack"  # the events that carry "X acknowledged Y" to the others paged
RESOLVE_SOURCE = "resolve"  # the all-clear of an incident a person resolved
STOPPABLE = (S.PENDING, S.DEFERRED, S.QUEUED)
REACHED = (S.SENDING, S.SENT, S.DELIVERED)
INC = Incident.__table__.c


def opens_incident(event_type: str) -> bool:
    kind = EVENT_KINDS.get(event_type)
    return bool(kind and kind.opens_incident)


@dataclass
class Attached:
    """What joining new events to their incidents decided."""

    route: list[Event] = field(default_factory=list)  # to route: first firings, all-clears, reports
    acknowledged: list[Event] = field(default_factory=list)  # a sender's acknowledgements that took effect
    opened: list[Incident] = field(default_factory=list)  # triggered now: their escalation clock starts
    informed: list[int] = field(default_factory=list)  # notices to those already paged (sender acks)

    @property
    def announce(self) -> list[Event]:
        """What outgoing webhooks hear of: incidents opened, acknowledged and resolved, and reports."""
        return sorted(self.route + self.acknowledged, key=lambda e: e.id)


def _identity(source: str, customer_id: int | None, key: str) -> tuple[str, int, str]:
    return source, customer_id or 0, key[:255]


def attach(events: list[Event], items: list[NormalisedEvent], *, now) -> Attached:
    """Give each new event its incident (opening one where needed).

    `items` are the parsed events in the order they came; `events` the ones newly stored. Flushes only."""
    result = Attached()
    keys = {dedup_identity(i): i.identity() for i in items}
    grouped = [e for e in events if keys.get(dedup_identity(e))]
    by_ticket = [e for e in events if e.ticket_id is not None and e not in grouped and e.incident_id is None]
    _attach_ticket_events(by_ticket)
    result.route = [e for e in events if e not in grouped]
    if not grouped:
        return result
    identity_of = {e.id: _identity(e.source, e.customer_id, keys[dedup_identity(e)]) for e in grouped}
    open_now = _open_incidents(set(identity_of.values()))
    created = _open_many(grouped, identity_of, open_now, now=now)  # first firings: one INSERT for all
    for event in grouped:
        identity = identity_of[event.id]
        incident = open_now.get(identity)
        if event.status == EventStatus.FIRING:
            if incident is not None and incident.id in created and created.pop(incident.id) is event:
                result.opened.append(incident)
                result.route.append(event)
            elif incident is not None:
                _resent(incident, event, now=now)  # open already, or opened by another request a moment ago
            event.incident_id = incident.id if incident is not None else None
        elif event.status == EventStatus.RESOLVED:
            if incident is not None:
                open_now.pop(identity)
                event.incident_id = incident.id
                if mark_resolved(incident, by=None, via=_sender(event), event=event, now=now):
                    result.route.append(event)  # the all-clear, to those its firing reached
            else:
                event.incident_id = _latest_id(identity)
        elif incident is None:  # an acknowledgement or an update of an incident not open here: no page
            event.incident_id = _latest_id(identity)
        else:
            event.incident_id = incident.id
            incident.last_event_at = now
            if event.status == EventStatus.ACKNOWLEDGED:
                informed = mark_acknowledged(incident, by=None, via=_sender(event), event=event, now=now)
                if informed is not None:
                    result.acknowledged.append(event)
                    result.informed += informed
            else:
                _updated(incident, event, now=now)
    return result


def _sender(event: Event) -> str:
    agent = (event.data or {}).get("agent")
    return f"{event.source} ({agent})" if agent else event.source


def _open_incidents(identities: set[tuple[str, int, str]]) -> dict[tuple[str, int, str], Incident]:
    if not identities:
        return {}
    wanted = {open_key(*identity): identity for identity in identities}
    rows = db.session.scalars(db.select(Incident).where(Incident.open_key.in_(wanted)))
    return {wanted[incident.open_key]: incident for incident in rows}


def _latest_id(identity: tuple[str, int, str]) -> int | None:
    source, customer_id, key = identity
    return db.session.scalar(
        db.select(Incident.id)
        .where(
            Incident.source == source,
            Incident.key == key,
            sa.func.coalesce(Incident.customer_id, 0) == customer_id,
        )
        .order_by(Incident.id.desc())
        .limit(1)
    )


def _open_many(
    grouped: list[Event], identity_of: dict[int, tuple], open_now: dict[tuple, Incident], *, now: datetime
) -> dict[int, Event]:
    """New triggered incidents for the first firings with none open, in one INSERT; a concurrent request that
    opened the same one wins (ON CONFLICT on open_key) and its incident is read back. Adds them to `open_now`;
    returns {new incident id: the event that opened it}."""
    first: dict[tuple, Event] = {}
    for event in grouped:
        identity = identity_of[event.id]
        if event.status == EventStatus.FIRING and identity not in open_now and identity not in first:
            first[identity] = event
    if not first:
        return {}
    rows = [
        {
            "customer_id": event.customer_id,
            "source": event.source,
            "key": identity[2],
            "open_key": open_key(*identity),
            "state": IncidentState.TRIGGERED,
            "severity": event.severity,
            "severity_rank": event.severity.rank,
            "event_type": event.event_type,
            "title": event.title,
            "summary": event.body or "",
            "labels": event.labels or {},
            "data": event.data or {},
            "ticket_id": event.ticket_id,
            "resend_count": 0,
            "triggered_at": event.created_at or now,
            "last_event_at": now,
            "escalation_level": 0,
            "created_at": now,
            "updated_at": now,
        }
        for identity, event in first.items()
    ]
    made = bulk.insert_returning_objects(Incident, rows, ignore_conflicts_on=("open_key",))
    by_key = {incident.open_key: incident for incident in made}
    opened: dict[int, Event] = {}
    for identity, event in first.items():
        incident = by_key.get(open_key(*identity))
        if incident is not None:
            open_now[identity] = incident
            opened[incident.id] = event
    missing = {identity for identity in first if identity not in open_now}
    open_now.update(_open_incidents(missing))  # lost a race: the other request's incident
    if opened:
        metrics.incidents.labels(transition="opened").inc(len(opened))
        db.session.execute(
            sa.insert(IncidentEntry),
            [
                {
                    "incident_id": incident_id,
                    "kind": "triggered",
                    "body": f"Triggered by {event.source}: {event.title}",
                    "event_id": event.id,
                    "data": {},
                    "created_at": now,
                }
                for incident_id, event in opened.items()
            ],
        )
    return opened


def _resent(incident: Incident, event: Event, *, now: datetime) -> None:
    incident.resend_count += 1
    incident.last_event_at = now
    if event.labels:
        incident.labels = event.labels
    if event.data:
        incident.data = event.data


def _updated(incident: Incident, event: Event, *, now: datetime) -> None:
    """A sender's update (PagerDuty's priority change): the severity follows, nobody is paged."""
    if event.severity != incident.severity:
        before = incident.severity
        incident.severity, incident.severity_rank = event.severity, event.severity.rank
        entry(incident, "severity", f"Severity {before} → {event.severity} ({event.source})", event=event, now=now)
    else:
        entry(incident, "updated", event.body or f"Updated by {event.source}", event=event, now=now)


def count_resends(duplicates: list[NormalisedEvent], *, now: datetime) -> None:
    """A redelivered firing event (Alertmanager's repeat_interval, a group change) counts on its open incident:
    one UPDATE, where the sender's request stores what it received (a redelivery leaves no row to route)."""
    resent = [d for d in duplicates if d.identity() and d.status == EventStatus.FIRING]
    keys = {open_key(item.source, item.customer_id, item.identity()) for item in resent}
    if not keys:
        return
    ids = db.session.scalars(
        sa.update(Incident.__table__)
        .where(INC.open_key.in_(keys))
        .values(resend_count=INC.resend_count + 1, last_event_at=now, updated_at=now)
        .returning(INC.id)
    ).all()
    bulk.expire(Incident, list(ids))


def _attach_ticket_events(events: list[Event]) -> None:
    """SLA warnings and breaches, ticket news: they belong to the incident their ticket was opened for."""
    if not events:
        return
    links = dict(
        db.session.execute(
            db.select(Incident.ticket_id, sa.func.max(Incident.id))
            .where(Incident.ticket_id.in_({e.ticket_id for e in events}))
            .group_by(Incident.ticket_id)
        ).all()
    )
    for event in events:
        event.incident_id = links.get(event.ticket_id)


def entry(
    incident: Incident,
    kind: str,
    body: str,
    *,
    by: User | None = None,
    via: str | None = None,
    event: Event | None = None,
    data: dict | None = None,
    now: datetime | None = None,
) -> IncidentEntry:
    row = IncidentEntry(
        incident_id=incident.id,
        kind=kind,
        body=body,
        actor_id=by.id if by else None,
        via=via,
        event_id=event.id if event is not None else None,
        data=data or {},
        created_at=now or utcnow(),
    )
    db.session.add(row)
    return row


# --- the one effect of acknowledging and resolving -------------------------------------------------


def _transition(
    incident: Incident, state: IncidentState, *, by: User | None, via: str, event: Event | None, now: datetime
) -> str:
    """What acknowledging and resolving share: the state with who/when/via, escalation stopped, the timeline
    entry, the audit record and the waiting pages suppressed. Returns who acted, as the notices name them."""
    verb = str(state)  # "acknowledged" / "resolved"
    who = by.name if by else via
    incident.state = state
    metrics.incidents.labels(transition=verb).inc()
    setattr(incident, f"{verb}_at", now)  # acknowledged_at / resolved_at, and their _by_id and _via
    setattr(incident, f"{verb}_by_id", by.id if by else None)
    setattr(incident, f"{verb}_via", via)
    incident.next_escalation_at = None
    incident.updated_at = now
    title = verb.capitalize()
    entry(
        incident, verb, f"{title} by {who} ({via})" if by else f"{title} at {via}", by=by, via=via, event=event, now=now
    )
    if by is not None:
        action = "incident.ack" if state == IncidentState.ACKNOWLEDGED else "incident.resolve"
        summary = f"#{incident.id} {incident.title} {verb} via {via}"
        audit.record(actor=by, action=action, target=incident, summary=summary)
    waiting = (
        f"acknowledged by {who}" if state == IncidentState.ACKNOWLEDGED else f"resolved by {who} before it went out"
    )
    suppress_waiting(incident, reason=waiting, now=now)
    return who


def mark_acknowledged(
    incident: Incident, *, by: User | None, via: str, event: Event | None = None, now: datetime | None = None
) -> list[int] | None:
    """Triggered → acknowledged: escalation stops, waiting pages are suppressed, those reached are told who
    took it (and outgoing webhooks: incident.acknowledged). None if it was not triggered. Flushes."""
    if incident.state != IncidentState.TRIGGERED:
        return None
    now = now or utcnow()
    who = _transition(incident, IncidentState.ACKNOWLEDGED, by=by, via=via, event=event, now=now)
    notice = event or _notice(
        incident,
        ACK_SOURCE,
        EventStatus.ACKNOWLEDGED,
        f"Acknowledged: {incident.title}",
        f"ACK: {who} acknowledged {incident.title} ({via}).",
        now=now,
    )
    if event is None:
        outgoing.fan_out([notice], now=now)
    return tell_reached(
        incident,
        notice,
        text=f"ACK: {who} acknowledged #{incident.id} {incident.title} ({via}).",
        skip_user=by,
        now=now,
    )


def mark_resolved(
    incident: Incident, *, by: User | None, via: str, event: Event | None = None, now: datetime | None = None
) -> bool:
    """Open → resolved: escalation stops, waiting pages are suppressed, and — when a person resolved it — the
    all-clear goes to those its firing reached (a sender's resolution is routed by the caller, as an event of
    its own). False if it already was resolved. Flushes."""
    if incident.state == IncidentState.RESOLVED:
        return False
    now = now or utcnow()
    incident.open_key = None  # the next firing of this alert opens a new incident
    who = _transition(incident, IncidentState.RESOLVED, by=by, via=via, event=event, now=now)
    if event is None:
        clear = _notice(
            incident,
            RESOLVE_SOURCE,
            EventStatus.RESOLVED,
            incident.title,
            f"Resolved by {who} ({via}).",
            now=now,
            data={"resolved_by_id": by.id if by else None},
        )
        decisions.route([clear], now=now)
        outgoing.fan_out([clear], now=now)
    return True


def reopen(incident: Incident, *, by: User, via: str, now: datetime | None = None) -> bool:
    """Resolved or acknowledged → triggered again (a person's call); nobody is paged anew."""
    if incident.state == IncidentState.TRIGGERED:
        return False
    now = now or utcnow()
    key = open_key(incident.source, incident.customer_id, incident.key)
    if incident.state == IncidentState.RESOLVED and _open_incidents(
        {_identity(incident.source, incident.customer_id, incident.key)}
    ):
        return False  # the alert fired again meanwhile: that newer incident is the open one
    incident.state = IncidentState.TRIGGERED
    incident.open_key = key
    incident.acknowledged_at = incident.acknowledged_by_id = incident.acknowledged_via = None
    incident.resolved_at = incident.resolved_by_id = incident.resolved_via = None
    incident.updated_at = now
    entry(incident, "reopened", f"Reopened by {by.name} ({via})", by=by, via=via, now=now)
    audit.record(
        actor=by, action="incident.reopen", target=incident, summary=f"#{incident.id} {incident.title} reopened"
    )
    return True


def event_ids(incident: Incident) -> sa.Select:
    return db.select(Event.id).where(Event.incident_id == incident.id)


def suppress_waiting(incident: Incident, *, reason: str, now: datetime) -> int:
    """Pages about the incident not yet handed to a provider end suppressed (webhooks still go out)."""
    return db.session.execute(
        sa.update(Notification)
        .where(
            Notification.event_id.in_(event_ids(incident).where(Event.status == EventStatus.FIRING)),
            Notification.status.in_(STOPPABLE),
            Notification.channel != Channel.WEBHOOK,
        )
        .values(
            status=S.SUPPRESSED,
            reason=sa.case(
                (Notification.hold == digest.STORM, f"{reason}; left out of the storm summary"[:300]),
                else_=reason[:300],
            ),
            next_attempt_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def _notice(
    incident: Incident,
    source: str,
    status: EventStatus,
    title: str,
    body: str,
    *,
    now: datetime,
    data: dict | None = None,
) -> Event:
    notice = Event(
        source=source,
        dedup_key=f"incident-{incident.id}:{status}:{now.isoformat()}",
        status=status,
        event_type=incident.event_type,
        severity=incident.severity,
        title=title[:300],
        body=body,
        labels=incident.labels or {},
        data=data or {},
        customer_id=incident.customer_id,
        ticket_id=incident.ticket_id,
        incident_id=incident.id,
        created_at=now,
    )
    db.session.add(notice)
    db.session.flush()
    return notice


def tell_reached(incident: Incident, notice: Event, *, text: str, skip_user: User | None, now: datetime) -> list[int]:
    """A notice to everyone a page about the incident reached, once per (user, channel)."""
    paged = event_ids(incident).where(Event.status == EventStatus.FIRING)
    return tell(paged, notice, text=text, skip_user=skip_user, now=now)


def tell(paged: sa.Select, notice: Event, *, text: str, skip_user: User | None, now: datetime) -> list[int]:
    """`notice` (an event already stored) to everyone the events `paged` reached, once per (user, channel)."""
    reached = db.session.execute(
        db.select(Notification.user_id, Notification.channel, Notification.recipient, Notification.customer_id)
        .where(
            Notification.event_id.in_(paged),
            Notification.status.in_(REACHED),
            Notification.channel.in_((Channel.SMS, Channel.EMAIL, Channel.WEB)),
            Notification.user_id.is_not(None),
            Notification.user_id != (skip_user.id if skip_user else 0),
        )
        .distinct()
    ).all()
    rows, seen = [], set()
    for user_id, channel, recipient, customer_id in reached:
        if (user_id, channel) in seen:
            continue
        seen.add((user_id, channel))
        rows.append(
            {
                "event_id": notice.id,
                "user_id": user_id,
                "customer_id": customer_id,
                "channel": channel,
                "recipient": recipient,
                "subject": notice.title,
                "body": text,
                "status": S.PENDING,
                "created_at": now,
                "updated_at": now,
            }
        )
    if not rows:
        return []
    informed = [row.id for row in bulk.insert_returning(Notification, rows, Notification.id)]
    outbox.deliver(informed)
    return informed
