"""The escalation policy pages' writes: a policy, its steps, and the routing rules that choose it.

The fields of each are listed once (POLICY, STEP, RULE): the pages' forms derive from them and these functions
validate through them. Whoever sees a policy's customer reads it (a policy of no customer: the admins); an
operator changes their customers' policies, an admin every one (webapp.tenancy). A step reaches only people
the principal sees and, for a customer's policy, that customer's people or admins, and only the customer's or
the operations team's schedules. Each change is audited and flushed, never committed.
"""

from __future__ import annotations

from typing import Any

from flask import abort

from webapp import tenancy
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.fields import Boolean, Choice, Integer, Spec, Text
from webapp.models import (
    PERSONAL_CHANNELS,
    ROLE_SCOPES,
    EscalationPolicy,
    EscalationRule,
    EscalationStep,
    Role,
    Schedule,
    Severity,
    User,
)
from webapp.services import audit
from webapp.services.routing.policies import forget, schedule_name

POLICY = Spec(
    "escalation policy",
    (
        Text(name="name", label="Name", required=True, max_length=120),
        Integer(
            name="repeat",
            label="Run the chain again, times (after the last step's wait)",
            default=0,
            required=True,
            minimum=0,
            maximum=9,
        ),
    ),
)

STEP = Spec(
    "escalation step",
    (
        Boolean(name="everyone", label="Everyone routing would page (by their preferences)"),
        Choice(
            name="role",
            label="Users of a role",
            choices=("", *(r.value for r in Role)),
            labels={"": "(none)"},
            default="",
        ),
        Choice(
            name="role_scope",
            label="Which of them",
            choices=ROLE_SCOPES,
            labels={"customer": "the incident's customer's (all if it has none)", "all": "all of them"},
            default="customer",
        ),
        Integer(
            name="wait_minutes",
            label="Wait before the next step (minutes)",
            default=15,
            required=True,
            minimum=0,
            maximum=7 * 24 * 60,
        ),
        Choice(
            name="channel",
            label="Channel",
            choices=("", *(c.value for c in PERSONAL_CHANNELS)),
            labels={"": "each person's preferences"},
            default="",
        ),
    ),
)

RULE = Spec(
    "routing rule",
    (
        Text(name="source", label="Source (empty: any)", max_length=32),
        Choice(
            name="min_severity",
            label="Severity at least",
            choices=("", *(s.value for s in Severity)),
            labels={"": "any"},
            default="",
        ),
        Integer(name="position", label="Order (lower first)", default=0, required=True, minimum=0, maximum=1000),
    ),
)


def visible(principal: tenancy.Principal):
    """The policies this principal sees: its customers' (admins: all, the global ones included)."""
    query = db.select(EscalationPolicy).order_by(EscalationPolicy.customer_id.is_not(None), EscalationPolicy.name)
    return list(db.session.scalars(principal.scoped(query, EscalationPolicy.customer_id)))


def get(principal: tenancy.Principal, policy_id: int) -> EscalationPolicy:
    policy = db.session.get(EscalationPolicy, policy_id)
    if policy is None or not principal.can_see(policy.customer_id):
        abort(404, description="No such escalation policy.")
    return policy


def _customer(principal: tenancy.Principal, value: Any) -> int | None:
    """The customer a new policy or rule belongs to (None: global), refused unless the principal changes it."""
    customer_id = None if value in (None, "", 0, "0") else value
    if customer_id is not None:
        try:
            customer_id = int(customer_id)
        except (TypeError, ValueError):
            raise InvalidPayload("Not a valid customer.", {"customer_id": "not a customer id"}) from None
        if principal.customer_named(customer_id) is None:
            raise InvalidPayload("Not a valid customer.", {"customer_id": "no such customer"})
    principal.check_change(customer_id)
    return customer_id


def create(principal: tenancy.Principal, payload: dict, customer_id: Any) -> EscalationPolicy:
    owner = _customer(principal, customer_id)
    values = POLICY.validate(payload)
    policy = EscalationPolicy(customer_id=owner, steps=[])
    POLICY.apply(policy, values)
    db.session.add(policy)
    db.session.flush()
    forget()
    audit.record(actor=principal.user, action="escalation_policy.create", target=policy, summary=policy.name)
    return policy


def update(principal: tenancy.Principal, policy: EscalationPolicy, payload: dict) -> dict:
    principal.check_change(policy.customer_id)
    values = POLICY.validate(payload, current=POLICY.values_of(policy))
    changes = POLICY.apply(policy, values)
    forget()
    if changes:
        audit.record(actor=principal.user, action="escalation_policy.update", target=policy, changes=changes)
    return changes


def delete(principal: tenancy.Principal, policy: EscalationPolicy) -> None:
    principal.check_change(policy.customer_id)
    if policy.is_default:
        raise InvalidPayload("The default policy cannot be deleted: edit its steps instead.", {})
    audit.record(actor=principal.user, action="escalation_policy.delete", target=policy, summary=policy.name)
    db.session.delete(policy)
    db.session.flush()
    forget()


def add_step(
    principal: tenancy.Principal,
    policy: EscalationPolicy,
    payload: dict,
    *,
    user_ids: list[Any] = (),
    schedule_id: Any = None,
) -> EscalationStep:
    """Append a step; its users must be people the principal sees (and, for a customer's policy, members)."""
    principal.check_change(policy.customer_id)
    values = STEP.validate(payload)
    refused: dict[str, str] = {}
    people = _people(principal, policy, user_ids, refused)
    schedule = _schedule(principal, policy, schedule_id, refused)
    if not (values["everyone"] or values["role"] or people or schedule is not None) and "user_ids" not in refused:
        refused["everyone"] = "Choose whom this step reaches: everyone, users, a role or a schedule's on-call."
    if refused:
        raise InvalidPayload(f"Not a valid {STEP.noun}.", refused)
    step = EscalationStep(
        position=len(policy.steps),
        everyone=values["everyone"],
        user_ids=people,
        role=Role(values["role"]) if values["role"] else None,
        role_scope=values["role_scope"],
        schedule_id=schedule,
        wait_minutes=values["wait_minutes"],
        channel=values["channel"] or None,
    )
    policy.steps.append(step)
    db.session.flush()
    forget()
    audit.record(
        actor=principal.user,
        action="escalation_policy.step_add",
        target=policy,
        summary=f"step {step.position + 1}: {step_words(step)}",
    )
    return step


def _people(principal, policy: EscalationPolicy, user_ids, refused: dict) -> list[int]:
    wanted = []
    for value in user_ids or []:
        try:
            wanted.append(int(value))
        except (TypeError, ValueError):
            refused["user_ids"] = "not a user id"
            return []
    if not wanted:
        return []
    users = list(db.session.scalars(db.select(User).where(User.id.in_(wanted))))
    ok = [
        u.id
        for u in users
        if principal.can_see_user(u)
        and (policy.customer_id is None or u.role == Role.ADMIN or any(c.id == policy.customer_id for c in u.customers))
    ]
    if len(set(ok)) != len(set(wanted)):
        refused["user_ids"] = "no such user here (a customer's policy reaches its own members and admins)"
        return []
    return sorted(set(ok))


def _schedules(principal: tenancy.Principal, policy: EscalationPolicy):
    """The schedules a step of `policy` may name: the principal sees them, and they are the policy's customer's
    or the operations team's (a customer's policy never pages through another customer's schedule)."""
    query = principal.scoped(db.select(Schedule).order_by(Schedule.name, Schedule.id), Schedule.customer_id)
    if policy.customer_id is not None:
        query = query.where(Schedule.customer_id.is_(None) | (Schedule.customer_id == policy.customer_id))
    return query


def schedule_choices(principal: tenancy.Principal, policy: EscalationPolicy) -> list[tuple[str, str]]:
    """(id, name) of the schedules a step of `policy` may name."""
    return [(str(s.id), s.name) for s in db.session.scalars(_schedules(principal, policy).limit(500))]


def _schedule(principal, policy: EscalationPolicy, schedule_id, refused: dict) -> int | None:
    if schedule_id in (None, ""):
        return None
    try:
        wanted = int(schedule_id)
    except (TypeError, ValueError):
        refused["schedule_id"] = "not a schedule id"
        return None
    found = db.session.scalar(_schedules(principal, policy).where(Schedule.id == wanted))
    if found is None:
        refused["schedule_id"] = "no such schedule here"
        return None
    return found.id


def _step_of(principal: tenancy.Principal, policy: EscalationPolicy, step_id: int) -> EscalationStep:
    principal.check_change(policy.customer_id)
    step = next((s for s in policy.steps if s.id == step_id), None)
    if step is None:
        abort(404, description="No such step.")
    return step


def _renumber(steps: list[EscalationStep]) -> None:
    """Positions 0, 1, 2… in list order (the walk and the first-step look-up read position 0 as the first)."""
    for position, kept in enumerate(steps):
        kept.position = position
    db.session.flush()
    forget()


def remove_step(principal: tenancy.Principal, policy: EscalationPolicy, step_id: int) -> None:
    step = _step_of(principal, policy, step_id)
    policy.steps.remove(step)
    _renumber(policy.steps)
    audit.record(actor=principal.user, action="escalation_policy.step_remove", target=policy, summary=step_words(step))


def move_step_up(principal: tenancy.Principal, policy: EscalationPolicy, step_id: int) -> None:
    """Swap a step with the one before it (the first stays first). Incidents already open keep their level."""
    step = _step_of(principal, policy, step_id)
    steps = list(policy.steps)
    at = steps.index(step)
    if at == 0:
        return
    steps[at - 1], steps[at] = steps[at], steps[at - 1]
    _renumber(steps)
    audit.record(
        actor=principal.user,
        action="escalation_policy.step_move",
        target=policy,
        summary=f"step {at + 1} is now step {at}: {step_words(step)}",
    )


def step_words(step: EscalationStep) -> str:
    parts = []
    if step.everyone:
        parts.append("everyone routing would page")
    if step.user_ids:
        names = db.session.scalars(db.select(User.name).where(User.id.in_(step.user_ids)).order_by(User.name))
        parts.append(", ".join(names))
    if step.role is not None:
        scope = "of the incident's customer" if step.role_scope == "customer" else "everywhere"
        parts.append(f"{Role(step.role)}s {scope}")
    if step.schedule_id is not None:
        parts.append(f"the on-call of {schedule_name(step.schedule_id)}")
    return " + ".join(parts) or "nobody"


def visible_rules(principal: tenancy.Principal) -> list[EscalationRule]:
    query = db.select(EscalationRule).order_by(EscalationRule.position, EscalationRule.id)
    return list(db.session.scalars(principal.scoped(query, EscalationRule.customer_id)))


def add_rule(principal: tenancy.Principal, payload: dict, *, customer_id: Any, policy_id: Any) -> EscalationRule:
    """A rule of one customer (or, for an admin, of all: customer empty) choosing a policy it may use."""
    owner = _customer(principal, customer_id)
    values = RULE.validate(payload)
    try:
        policy = db.session.get(EscalationPolicy, int(policy_id))
    except (TypeError, ValueError):
        policy = None
    if policy is None or not principal.can_see(policy.customer_id):
        raise InvalidPayload(f"Not a valid {RULE.noun}.", {"policy_id": "no such escalation policy"})
    if policy.customer_id is not None and policy.customer_id != owner:
        raise InvalidPayload(
            f"Not a valid {RULE.noun}.", {"policy_id": "a customer's policy serves only that customer's rules"}
        )
    rule = EscalationRule(
        customer_id=owner,
        source=values["source"] or None,
        min_severity=Severity(values["min_severity"]) if values["min_severity"] else None,
        position=values["position"],
        policy_id=policy.id,
    )
    db.session.add(rule)
    db.session.flush()
    forget()
    audit.record(actor=principal.user, action="escalation_rule.create", target=rule, summary=policy.name)
    return rule


def remove_rule(principal: tenancy.Principal, rule_id: int) -> None:
    rule = db.session.get(EscalationRule, rule_id)
    if rule is None or not principal.can_see(rule.customer_id):
        abort(404, description="No such routing rule.")
    principal.check_change(rule.customer_id)
    audit.record(actor=principal.user, action="escalation_rule.delete", target=rule)
    db.session.delete(rule)
    db.session.flush()
    forget()
