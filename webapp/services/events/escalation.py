"""Escalation: an incident or a breached ticket that nobody acknowledges climbs to the next step.

An incident walks its escalation policy (webapp.services.routing.policies): the first step when it opens (routing
pages that step's people), then each next step after the previous step's wait, the chain run again `repeat`
times, until someone acknowledges or resolves it. The default policy reproduces the escalation of the SLA
policies: level 1 is the customer's admins (all admins if it has none), level 2 and later all admins; after the
SLA policy's delay, then every interval, up to its limit. A breached ticket climbs those same SLA levels.

Each step is won by one conditional UPDATE on next_escalation_at (partial index ix_*_escalation: triggered
incidents, unacknowledged tickets), so two sweeps never escalate twice, and an acknowledgement or a resolution
— on any path — stops the next step at once. Each step is an Event of its own (source "escalation", dedup key
per level), attached to its incident, in its timeline, and routed to that step's users as its audience.
`escalate_now` takes an incident's next step at once (a paged person pressing 2 on a voice call).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (
    EVENT_DEDUP_KEY,
    Channel,
    Event,
    EventStatus,
    Incident,
    IncidentState,
    Role,
    Severity,
    SlaPolicy,
    Ticket,
    User,
    dedup_identity,
    utcnow,
)
from webapp.models.ticket import OPEN_FOR_SLA
from webapp.services import bulk
from webapp.services.events import incidents
from webapp.services.routing import decisions, policies
from webapp.sources.normalised import NormalisedEvent

T = Ticket.__table__.c
INC = Incident.__table__.c


@dataclass
class EscalationResult:
    escalated: list[str] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)


def _policies(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], SlaPolicy]:
    return policies.sla_policies(pairs)


def _first_delay(policy: SlaPolicy | None) -> timedelta | None:
    if policy is None or not policy.escalation_minutes or policy.escalation_limit < 1:
        return None
    return timedelta(minutes=policy.escalation_minutes)


def _schedule(table: sa.Table, times: list[dict]) -> None:
    bulk.expire(Ticket if table is Ticket.__table__ else Incident, [t["row_id"] for t in times])
    if times:
        db.session.execute(
            sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(next_escalation_at=sa.bindparam("at")),
            times,
        )


def arm_tickets(rows: list[sa.Row], *, now: datetime) -> None:
    """Breached tickets start their escalation clock (when their policy escalates)."""
    slas = _policies({(r.customer_id, str(r.priority)) for r in rows})
    times = []
    for row in rows:
        delay = _first_delay(slas.get((row.customer_id, str(row.priority))))
        if delay is not None:
            times.append({"row_id": row.id, "at": now + delay})
    _schedule(Ticket.__table__, times)


def arm_incidents(opened: list[Incident], *, now: datetime) -> None:
    """Newly triggered incidents take their escalation policy (the routing rules' choice; None: the default)
    and start its clock: the next step is due after the first step's wait."""
    if not opened:
        return
    chosen = policies.chosen(opened)
    walks = policies.load({i for i in chosen.values() if i is not None})
    sla = _policies({(i.customer_id, str(i.severity.ticket_priority)) for i in opened if i.customer_id})
    for incident in opened:
        policy_id = chosen[id(incident)]
        walk = walks.get(policy_id) or walks[None]
        wait = policies.next_wait(walk, 0, sla.get((incident.customer_id, str(incident.severity.ticket_priority))))
        if wait is not None:
            incident.next_escalation_at = (incident.triggered_at or now) + wait
        if policy_id is not None:  # a routing rule's policy: kept, and its timeline says whom the first step paged
            incident.policy_id = policy_id
            first = policies.step_at(walk, 0)
            if first is not None:
                step = Step(None, policies.target(first, incident.customer_id, now), 0, incident.id, walk.name, 1)
                incidents.entry(incident, "policy", _words(step), now=now)


def escalate(*, now: datetime, only: list[int] | None = None) -> EscalationResult:
    """Take every due, unacknowledged escalation step (once) and notify its level. `only`: these incidents
    alone (and no tickets)."""
    result = EscalationResult()
    tickets = []
    if only is None:
        tickets = db.session.execute(
            sa.update(Ticket.__table__)
            .where(T.next_escalation_at.is_not(None), T.next_escalation_at <= now, T.acknowledged_at.is_(None))
            .where(OPEN_FOR_SLA)
            .values(escalation_level=T.escalation_level + 1, next_escalation_at=None, updated_at=now)
            .returning(T.id, T.customer_id, T.priority, T.escalation_level, T.title, T.breached_at)
        ).all()
    due = sa.update(Incident.__table__).where(
        INC.next_escalation_at.is_not(None),
        INC.next_escalation_at <= now,
        INC.state == IncidentState.TRIGGERED.value,
    )
    if only is not None:
        due = due.where(INC.id.in_(only))
    events = db.session.execute(
        due.values(escalation_level=INC.escalation_level + 1, next_escalation_at=None, updated_at=now).returning(
            INC.id,
            INC.customer_id,
            INC.severity,
            INC.escalation_level,
            INC.title,
            INC.event_type,
            INC.triggered_at,
            INC.ticket_id,
            INC.policy_id,
        )
    ).all()
    if not tickets and not events:
        return result
    bulk.expire(Ticket, [r.id for r in tickets])
    bulk.expire(Incident, [r.id for r in events])
    pairs = {(r.customer_id, str(r.priority)) for r in tickets}
    pairs |= {(r.customer_id, str(Severity(r.severity).ticket_priority)) for r in events}
    slas = _policies(pairs)
    walks = policies.load({r.policy_id for r in events if r.policy_id is not None})
    steps: list[Step] = []
    for row in tickets:
        policy = slas.get((row.customer_id, str(row.priority)))
        key = f"OPS-{row.id}"
        item = NormalisedEvent(
            source="escalation",
            dedup_key=f"{key}:breach:{row.breached_at.isoformat()}:level-{row.escalation_level}",
            status=EventStatus.FIRING,
            severity=Severity.HIGH,
            title=f"Escalation level {row.escalation_level}: {key} missed its SLA: {row.title}"[:300],
            body="Nobody has acknowledged this breached ticket.",
            event_type="sla_breach",
            customer_id=row.customer_id,
            ticket_id=row.id,
            labels={"ticket": key, "escalation_level": str(row.escalation_level)},
            data={"ticket_id": row.id, "escalation_level": row.escalation_level},
        )
        audience = tuple(policies.role_users(Role.ADMIN, row.customer_id if row.escalation_level == 1 else None))
        steps.append(Step(item, policies.Target(audience, None, "admins"), row.escalation_level, None))
        result.escalated.append(f"{key} level {row.escalation_level}")
        _reschedule(Ticket.__table__, row.id, row.escalation_level, policy, now, result)
    for row in events:
        walk = walks.get(row.policy_id) or walks[None]
        sla = slas.get((row.customer_id, str(Severity(row.severity).ticket_priority)))
        step = policies.step_at(walk, row.escalation_level)
        if step is None:  # the chain was over (escalate_now past its end): nothing more to take
            continue
        item = NormalisedEvent(
            source="escalation",
            dedup_key=f"incident-{row.id}:{row.triggered_at.isoformat()}:level-{row.escalation_level}",
            status=EventStatus.FIRING,
            severity=Severity(row.severity),
            title=f"Escalation level {row.escalation_level}: {row.title}"[:300],
            body="Nobody has acknowledged this incident.",
            event_type=row.event_type,
            customer_id=row.customer_id,
            ticket_id=row.ticket_id,
            labels={"escalation_level": str(row.escalation_level)},
            data={"incident_id": row.id, "escalation_level": row.escalation_level, "step": step.position + 1},
        )
        target = policies.target(step, row.customer_id, now)
        steps.append(Step(item, target, row.escalation_level, row.id, policies.describe(walk), step.position + 1))
        result.escalated.append(f"incident {row.id} level {row.escalation_level}")
        wait = policies.next_wait(walk, row.escalation_level, sla)
        if wait is not None:
            _schedule(Incident.__table__, [{"row_id": row.id, "at": now + wait}])
    result.notifications = _notify(steps, now=now)
    return result


def escalate_now(incident_id: int, *, now: datetime | None = None) -> EscalationResult:
    """Take the incident's next step at once, whatever its wait (a paged person asked to escalate). Nothing
    happens if it is no longer triggered or its chain is over; the same conditional UPDATE as the sweep wins
    the step, so a sweep running at the same moment never takes it twice."""
    now = now or utcnow()
    moved = db.session.execute(
        sa.update(Incident.__table__)
        .where(INC.id == incident_id, INC.state == IncidentState.TRIGGERED.value, INC.next_escalation_at.is_not(None))
        .values(next_escalation_at=now, updated_at=now)
    ).rowcount
    if not moved:
        return EscalationResult()
    bulk.expire(Incident, [incident_id])
    return escalate(now=now, only=[incident_id])


def _reschedule(table, row_id: int, level: int, policy: SlaPolicy | None, now: datetime, result) -> None:
    if policy is None or level >= policy.escalation_limit:
        return
    every = policy.escalation_interval_minutes or policy.escalation_minutes or 0
    if every > 0:
        _schedule(table, [{"row_id": row_id, "at": now + timedelta(minutes=every)}])


def audience(customer_id: int | None, level: int) -> list[int]:
    """The default policy's SLA levels: level 1 the customer's active admins (all admins if none); later levels
    every active admin."""
    return policies.role_users(Role.ADMIN, customer_id if level == 1 else None)


@dataclass
class Step:
    """One step taken: its event, whom it reaches, its level; for an incident, its policy and step number."""

    item: NormalisedEvent | None  # None: the first step, paged by routing the incident's own event
    target: policies.Target
    level: int
    incident_id: int | None
    policy: str = ""
    number: int = 0


def _notify(steps: list[Step], *, now: datetime) -> list[int]:
    """Store each step's event (a repeat is a no-op), attached to its incident, and route it to its people."""
    rows = [{**asdict(s.item), "incident_id": s.incident_id, "created_at": now} for s in steps]
    for row in rows:
        del row["incident_key"]
    ids = [r.id for r in bulk.insert_returning(Event, rows, Event.id, ignore_conflicts_on=EVENT_DEDUP_KEY)]
    if not ids:
        return []
    stored = db.session.scalars(db.select(Event).where(Event.id.in_(ids)))
    by_key = {dedup_identity(e): e for e in stored}
    groups: dict[tuple, list[Event]] = {}
    for step in steps:
        event = by_key.get(dedup_identity(step.item))
        if event is None:
            continue
        groups.setdefault((step.target.audience, step.target.channel), []).append(event)
        if step.incident_id is not None:
            incident = db.session.get(Incident, step.incident_id)
            incidents.entry(incident, "escalated", _words(step), event=event, now=now)
    notified: list[int] = []
    for (users, channel), group in groups.items():
        forced = Channel(channel) if channel else None
        audience = list(users) if users is not None else None
        notified.extend(r.id for r in decisions.route(group, now=now, audience=audience, channel=forced))
    return notified


def _words(step: Step) -> str:
    """The timeline line: the level, and for a policy's step which one and whom it reaches."""
    words = "Paged" if step.level == 0 else f"Escalated to level {step.level}"
    if step.policy:
        reached = step.target.words
        if step.target.audience is not None:
            names = db.session.scalars(
                db.select(User.name).where(User.id.in_(step.target.audience)).order_by(User.name)
            ).all()
            reached = f"{reached}: {', '.join(names) or 'nobody'}"
        words += f" — step {step.number} of {step.policy} ({reached})"
        if step.target.channel:
            words += f" by {step.target.channel}"
    return words
