"""Escalation: an incident or a breached ticket that nobody acknowledges climbs to the next level.

Level 1 is the customer's admins (all admins if it has none), level 2 and later all admins; after the
policy's delay, then every interval, up to its limit. Each step is won by one conditional UPDATE on
next_escalation_at (partial index ix_*_escalation: triggered incidents, unacknowledged tickets), so two
sweeps never escalate twice, and an acknowledgement or a resolution — on any path — stops the next step at
once. Each step is an Event of its own (source "escalation", dedup key per level), attached to its incident
and routed to that level's users as its audience.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (
    EVENT_DEDUP_KEY,
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
    user_customer,
    utcnow,
)
from webapp.models.ticket import OPEN_FOR_SLA
from webapp.services import bulk
from webapp.services.events import incidents
from webapp.services.routing import decisions
from webapp.sources.normalised import NormalisedEvent

T = Ticket.__table__.c
INC = Incident.__table__.c


@dataclass
class EscalationResult:
    escalated: list[str] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)


def _policies(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], SlaPolicy]:
    customers = {customer_id for customer_id, _ in pairs if customer_id is not None}
    if not customers:
        return {}
    rows = db.session.scalars(db.select(SlaPolicy).where(SlaPolicy.customer_id.in_(customers)))
    return {(p.customer_id, str(p.priority)): p for p in rows}


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
    policies = _policies({(r.customer_id, str(r.priority)) for r in rows})
    times = []
    for row in rows:
        delay = _first_delay(policies.get((row.customer_id, str(row.priority))))
        if delay is not None:
            times.append({"row_id": row.id, "at": now + delay})
    _schedule(Ticket.__table__, times)


def arm_incidents(incidents: list[Incident], *, now: datetime) -> None:
    """Newly triggered incidents start their escalation clock from the customer's policy for their severity."""
    rows = [i for i in incidents if i.customer_id]
    policies = _policies({(i.customer_id, str(i.severity.ticket_priority)) for i in rows})
    for incident in rows:
        delay = _first_delay(policies.get((incident.customer_id, str(incident.severity.ticket_priority))))
        if delay is not None:
            incident.next_escalation_at = (incident.triggered_at or now) + delay


def escalate(*, now: datetime) -> EscalationResult:
    """Take every due, unacknowledged escalation step (once) and notify its level."""
    result = EscalationResult()
    tickets = db.session.execute(
        sa.update(Ticket.__table__)
        .where(T.next_escalation_at.is_not(None), T.next_escalation_at <= now, T.acknowledged_at.is_(None))
        .where(OPEN_FOR_SLA)
        .values(escalation_level=T.escalation_level + 1, next_escalation_at=None, updated_at=now)
        .returning(T.id, T.customer_id, T.priority, T.escalation_level, T.title, T.breached_at)
    ).all()
    events = db.session.execute(
        sa.update(Incident.__table__)
        .where(
            INC.next_escalation_at.is_not(None),
            INC.next_escalation_at <= now,
            INC.state == IncidentState.TRIGGERED.value,
        )
        .values(escalation_level=INC.escalation_level + 1, next_escalation_at=None, updated_at=now)
        .returning(
            INC.id,
            INC.customer_id,
            INC.severity,
            INC.escalation_level,
            INC.title,
            INC.event_type,
            INC.triggered_at,
            INC.ticket_id,
        )
    ).all()
    if not tickets and not events:
        return result
    bulk.expire(Ticket, [r.id for r in tickets])
    bulk.expire(Incident, [r.id for r in events])
    pairs = {(r.customer_id, str(r.priority)) for r in tickets}
    pairs |= {(r.customer_id, str(Severity(r.severity).ticket_priority)) for r in events}
    policies = _policies(pairs)
    steps: list[tuple[NormalisedEvent, int | None, int, int | None]] = []  # item, customer, level, alert
    for row in tickets:
        policy = policies.get((row.customer_id, str(row.priority)))
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
        steps.append((item, row.customer_id, row.escalation_level, None))
        result.escalated.append(f"{key} level {row.escalation_level}")
        _reschedule(Ticket.__table__, row.id, row.escalation_level, policy, now, result)
    for row in events:
        policy = policies.get((row.customer_id, str(Severity(row.severity).ticket_priority)))
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
            data={"incident_id": row.id, "escalation_level": row.escalation_level},
        )
        steps.append((item, row.customer_id, row.escalation_level, row.id))
        result.escalated.append(f"incident {row.id} level {row.escalation_level}")
        _reschedule(Incident.__table__, row.id, row.escalation_level, policy, now, result)
    result.notifications = _notify(steps, now=now)
    return result


def _reschedule(table, row_id: int, level: int, policy: SlaPolicy | None, now: datetime, result) -> None:
    if policy is None or level >= policy.escalation_limit:
        return
    every = policy.escalation_interval_minutes or policy.escalation_minutes or 0
    if every > 0:
        _schedule(table, [{"row_id": row_id, "at": now + timedelta(minutes=every)}])


def audience(customer_id: int | None, level: int) -> list[int]:
    """Level 1: the customer's active admins (all admins if none); later levels: every active admin."""
    admins = db.select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id)
    if level == 1 and customer_id is not None:
        mine = list(
            db.session.scalars(
                admins.join(user_customer, user_customer.c.user_id == User.id).where(
                    user_customer.c.customer_id == customer_id
                )
            )
        )
        if mine:
            return mine
    return list(db.session.scalars(admins))


def _notify(steps: list[tuple], *, now: datetime) -> list[int]:
    """Store each step's event (a repeat is a no-op), attached to its incident, and route it to its level."""
    rows = [{**asdict(item), "incident_id": incident_id, "created_at": now} for item, _, _, incident_id in steps]
    for row in rows:
        del row["incident_key"]
    ids = [r.id for r in bulk.insert_returning(Event, rows, Event.id, ignore_conflicts_on=EVENT_DEDUP_KEY)]
    if not ids:
        return []
    stored = db.session.scalars(db.select(Event).where(Event.id.in_(ids)))
    by_key = {dedup_identity(e): e for e in stored}
    groups: dict[tuple[int, ...], list[Event]] = {}
    for item, customer_id, level, incident_id in steps:
        event = by_key.get(dedup_identity(item))
        if event is not None:
            groups.setdefault(tuple(audience(customer_id, level)), []).append(event)
            if incident_id is not None:
                incident = db.session.get(Incident, incident_id)
                incidents.entry(incident, "escalated", f"Escalated to level {level}", event=event, now=now)
    notified: list[int] = []
    for users, group in groups.items():
        notified.extend(r.id for r in decisions.route(group, now=now, audience=list(users)))
    return notified


def escalate_now(incident_id: int, *, now: datetime | None = None) -> EscalationResult:
    """Take the incident's next escalation step now, not when its clock says (someone asked: digit 2 on a
    call). Only a triggered incident with a step still to come climbs; the step is the sweep's own (one
    conditional UPDATE wins it)."""
    now = now or utcnow()
    moved = db.session.execute(
        sa.update(Incident.__table__)
        .where(INC.id == incident_id, INC.state == IncidentState.TRIGGERED.value, INC.next_escalation_at.is_not(None))
        .values(next_escalation_at=now, updated_at=now)
    ).rowcount
    if not moved:
        return EscalationResult()
    bulk.expire(Incident, [incident_id])
    return escalate(now=now)
