"""Escalation policies: which policy an incident walks, who each step reaches, and when the next step is due
(the pages' writes are in policy_admin).

The walk itself (the sweep, its conditional UPDATE, the step events) is webapp.services.events.escalation;
routing asks here for the first step of an incident that opens (its audience), and the preview and explain
describe the whole chain from `chain()`.

With no default policy row (a fresh test database, or one deleted by hand), `builtin_default()` stands in: the
same policy the migration creates, so the behaviour before policies stays when nothing is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import joinedload

from webapp.extensions import db
from webapp.models import (
    INCIDENT_KINDS,
    INCIDENT_SOURCES,
    EscalationPolicy,
    EscalationRule,
    EscalationStep,
    Event,
    EventStatus,
    Role,
    Schedule,
    Severity,
    SlaPolicy,
    User,
    user_customer,
)
from webapp.services import oncall
from webapp.services.routing.rules import pick_policy

ESCALATION_SOURCE = "escalation"  # Event.source of a step's event

# --- the default ------------------------------------------------------------------------------------------


def builtin_default() -> EscalationPolicy:
    """The escalation before policies (unsaved): everyone routing pages, then the customer's admins (all admins
    if it has none), then all admins; waits and levels from the customer's SLA policy. The migration stores it."""
    return EscalationPolicy(
        name="Default (SLA escalation)",
        repeat=0,
        sla_timing=True,
        is_default=True,
        steps=[
            EscalationStep(position=0, everyone=True, user_ids=[], role_scope="customer", wait_minutes=0),
            EscalationStep(position=1, everyone=False, user_ids=[], role=Role.ADMIN, role_scope="customer"),
            EscalationStep(position=2, everyone=False, user_ids=[], role=Role.ADMIN, role_scope="all"),
        ],
    )


@dataclass
class Snapshot:
    """The routing rules in order, and the policies they name with the default (None), with their steps."""

    rules: list[EscalationRule]
    policies: dict[int | None, EscalationPolicy]


_SNAPSHOT = "opsrelay.escalation_snapshot"


def snapshot() -> Snapshot:
    """Rules, their policies and the default, steps included: ONE statement, read once per transaction (routing
    an alert and arming its incident both ask; a page that changes them starts afresh with `forget`)."""
    transaction = db.session().get_transaction()
    cached = db.session.info.get(_SNAPSHOT)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    found = (
        db.session.scalars(
            db.select(EscalationPolicy)
            .where(
                EscalationPolicy.is_default.is_(True)
                | EscalationPolicy.id.in_(db.select(EscalationRule.policy_id).scalar_subquery())
            )
            .options(joinedload(EscalationPolicy.steps), joinedload(EscalationPolicy.rules))
        )
        .unique()
        .all()
    )
    rules = sorted((r for p in found for r in p.rules), key=lambda r: (r.position, r.id))
    by_id: dict[int | None, EscalationPolicy] = {p.id: p for p in found}
    stored = next((p for p in found if p.is_default and p.steps), None)
    by_id[None] = stored if stored is not None else builtin_default()
    result = Snapshot(rules, by_id)
    db.session.info[_SNAPSHOT] = (db.session().get_transaction(), result)
    return result


def forget() -> None:
    db.session.info.pop(_SNAPSHOT, None)


def load(policy_ids: set[int]) -> dict[int | None, EscalationPolicy]:
    """Policies by id (those no rule names any more included), with None -> the default."""
    known = snapshot().policies
    found = dict(known)
    missing = {i for i in policy_ids if i not in known}
    if missing:
        for policy in db.session.scalars(db.select(EscalationPolicy).where(EscalationPolicy.id.in_(missing))):
            found[policy.id] = policy
    return found


# --- choosing the policy, the first step ------------------------------------------------------------------


def opens(event: Event) -> bool:
    """Would this event open (or has it opened) an incident, whose policy's first step decides its audience?"""
    if event.status != EventStatus.FIRING or event.source == ESCALATION_SOURCE:
        return False
    if event.event_type not in INCIDENT_KINDS:
        return False
    return event.incident_id is not None or event.source in INCIDENT_SOURCES


def chosen(items: list) -> dict[int, int | None]:
    """{id(item): the policy id its routing rules choose (None: the default)} for events or incidents."""
    rules = snapshot().rules
    return {id(e): pick_policy(rules, e) for e in items}


@dataclass(frozen=True)
class Target:
    """Who one step reaches: `audience` None is everyone routing would page; `channel` a forced channel."""

    audience: tuple[int, ...] | None
    channel: str | None
    words: str


def first_steps(events: list[Event], *, now: datetime) -> dict[int, Target]:
    """{id(event): its policy's first step} for the events that open incidents."""
    openers = [e for e in events if opens(e)]
    if not openers:
        return {}
    picked = chosen(openers)
    walks = snapshot().policies
    found: dict[tuple, Target] = {}  # a burst of alerts of one customer and policy: one look-up
    for e in openers:
        key = (picked[id(e)], e.customer_id)
        if key not in found:
            found[key] = target(step_at(walks.get(picked[id(e)]) or walks[None], 0), e.customer_id, now)
    return {id(e): found[(picked[id(e)], e.customer_id)] for e in openers}


# --- who a step reaches -----------------------------------------------------------------------------------


def target(step: EscalationStep | None, customer_id: int | None, at: datetime) -> Target:
    """The users `step` reaches for an incident of `customer_id` at `at` (active users only)."""
    if step is None or step.everyone:
        return Target(None, step.channel if step is not None else None, "everyone routing would page")
    ids: set[int] = {int(i) for i in (step.user_ids or [])}
    parts = []
    if step.user_ids:
        parts.append("chosen users")
    if step.role is not None:
        ids |= set(role_users(Role(step.role), customer_id if step.role_scope == "customer" else None))
        where = "of the incident's customer" if step.role_scope == "customer" else "everywhere"
        parts.append(f"{Role(step.role)}s {where}")
    if step.schedule_id is not None:
        ids |= set(on_call(step.schedule_id, at))
        parts.append(f"the on-call of {schedule_name(step.schedule_id)}")
    active = (
        set(db.session.scalars(db.select(User.id).where(User.id.in_(ids), User.is_active.is_(True)))) if ids else set()
    )
    return Target(tuple(sorted(active)), step.channel, ", ".join(parts) or "nobody")


def schedule_name(schedule_id: int) -> str:
    name = db.session.scalar(db.select(Schedule.name).where(Schedule.id == schedule_id))
    return f"schedule “{name}”" if name else f"schedule #{schedule_id}"


def role_users(role: Role, customer_id: int | None) -> list[int]:
    """The active users of `role` of the customer (all of them if the customer has none, or if no customer)."""
    users = db.select(User.id).where(User.role == role, User.is_active.is_(True)).order_by(User.id)
    if customer_id is not None:
        mine = list(
            db.session.scalars(
                users.join(user_customer, user_customer.c.user_id == User.id).where(
                    user_customer.c.customer_id == customer_id
                )
            )
        )
        if mine:
            return mine
    return list(db.session.scalars(users))


def on_call(schedule_id: int, at: datetime) -> list[int]:
    """The users on call for `schedule_id` at `at` (webapp.services.oncall)."""
    return oncall.on_call_user_ids([schedule_id], at).get(schedule_id, [])


# --- the walk's clock -------------------------------------------------------------------------------------


def step_at(policy: EscalationPolicy, level: int) -> EscalationStep | None:
    """The step taken at `level` (0: when the incident opens). SLA timing: the last step repeats."""
    steps = policy.steps
    if not steps:
        return None
    if policy.sla_timing:
        return steps[min(level, len(steps) - 1)]
    if level >= len(steps) * (1 + policy.repeat):
        return None
    return steps[level % len(steps)]


def sla_policies(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], SlaPolicy]:
    """The SLA policies of these (customer, priority) pairs, in one statement."""
    customers = {customer_id for customer_id, _ in pairs if customer_id is not None}
    if not customers:
        return {}
    rows = db.session.scalars(db.select(SlaPolicy).where(SlaPolicy.customer_id.in_(customers)))
    return {(p.customer_id, str(p.priority)): p for p in rows}


def next_wait(policy: EscalationPolicy, level: int, sla: SlaPolicy | None) -> timedelta | None:
    """How long after taking `level` the next step is due; None: the chain is over."""
    if policy.sla_timing:
        if sla is None or not sla.escalation_minutes or level >= sla.escalation_limit:
            return None
        minutes = sla.escalation_minutes if level == 0 else (sla.escalation_interval_minutes or sla.escalation_minutes)
        return timedelta(minutes=minutes) if minutes else None
    if step_at(policy, level + 1) is None:
        return None
    return timedelta(minutes=step_at(policy, level).wait_minutes)


@dataclass(frozen=True)
class ChainStep:
    level: int
    at: datetime
    target: Target


def chain(
    policy: EscalationPolicy, *, customer_id: int | None, sla: SlaPolicy | None, start: datetime, limit: int = 30
) -> list[ChainStep]:
    """Every step the incident would take if nobody acknowledges it, with when and whom (preview, explain)."""
    out, at, level = [], start, 0
    while level < limit:
        step = step_at(policy, level)
        if step is None:
            break
        out.append(ChainStep(level, at, target(step, customer_id, at)))
        wait = next_wait(policy, level, sla)
        if wait is None:
            break
        at, level = at + wait, level + 1
    return out


def describe(policy: EscalationPolicy) -> str:
    return policy.name if policy.id is not None or not policy.is_default else f"{policy.name} (built in)"


# --- what the preview and explain say ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    level: int
    number: int  # the step's place in its policy, from 1
    at: datetime
    audience: tuple[int, ...] | None  # None: everyone routing would page
    names: tuple[str, ...]
    channel: str | None
    words: str

    def as_json(self) -> dict:
        return {
            "level": self.level,
            "step": self.number,
            "at": self.at.isoformat(),
            "reaches": "everyone routing would page" if self.audience is None else list(self.names),
            "user_ids": None if self.audience is None else list(self.audience),
            "channel": self.channel or "their preferences",
            "targets": self.words,
        }


@dataclass(frozen=True)
class Plan:
    policy: str
    steps: tuple[PlannedStep, ...]

    def as_json(self) -> dict:
        return {"policy": self.policy, "steps": [s.as_json() for s in self.steps]}


def plan(
    policy: EscalationPolicy, *, customer_id: int | None, severity: Severity, start: datetime, limit: int = 30
) -> Plan:
    """Which step would reach whom, and when, if nobody acknowledges (an SLA-timed policy without an SLA
    escalation stops after its first step, as the walk does)."""
    sla = sla_policies({(customer_id, str(Severity(severity).ticket_priority))}).get(
        (customer_id, str(Severity(severity).ticket_priority))
    )
    taken = chain(policy, customer_id=customer_id, sla=sla, start=start, limit=limit)
    ids = {i for s in taken if s.target.audience for i in s.target.audience}
    names = dict(db.session.execute(db.select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    steps = []
    for s in taken:
        number = step_at(policy, s.level).position + 1
        audience = s.target.audience
        shown = tuple(names.get(i, f"#{i}") for i in audience) if audience is not None else ()
        steps.append(PlannedStep(s.level, number, s.at, audience, shown, s.target.channel, s.target.words))
    return Plan(describe(policy), tuple(steps))


def plans_for(events: list[Event], *, now: datetime) -> dict[int, Plan]:
    """{id(event): its escalation plan} for the events that would open an incident (the routing preview)."""
    openers = [e for e in events if opens(e)]
    if not openers:
        return {}
    picked = chosen(openers)
    walks = load({i for i in picked.values() if i is not None})
    return {
        id(e): plan(walks.get(picked[id(e)]) or walks[None], customer_id=e.customer_id, severity=e.severity, start=now)
        for e in openers
    }


def plan_of_incident(incident) -> Plan:
    """The plan of an incident's own policy, from its (re)opening."""
    walks = load({incident.policy_id} if incident.policy_id else set())
    policy = walks.get(incident.policy_id) or walks[None]
    return plan(policy, customer_id=incident.customer_id, severity=incident.severity, start=incident.triggered_at)
