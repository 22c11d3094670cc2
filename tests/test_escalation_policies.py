"""Escalation policies: an incident walks its policy's steps on a controlled clock until someone acknowledges
it; routing rules choose the policy (a customer's rules never reach another's alerts); repeats; escalating at
once; and the default policy (stored or built in) keeps the SLA escalation of before."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from tests.test_migrations import empty_database, migrated  # noqa: F401 (fixtures)
from tests.test_oncall import _schedule as weekly_rotation
from tests.test_routing_api import PREVIEW, key_for  # noqa: F401 (a fixture)
from webapp.extensions import db
from webapp.models import (
    EscalationPolicy,
    EscalationRule,
    EscalationStep,
    Event,
    EventStatus,
    Incident,
    IncidentEntry,
    Notification,
    Priority,
    Role,
    ScheduleOverride,
    Severity,
    SlaPolicy,
)
from webapp.services.events import escalation, ingest
from webapp.services.inbound import acks
from webapp.services.routing import policies
from webapp.services.tickets import sla
from webapp.sources.normalised import NormalisedEvent

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


@pytest.fixture
def people(make_user, customer):
    alice = make_user(Role.OPERATOR, name="Alice", phone="+14155550111", customers=[customer])
    bob = make_user(Role.OPERATOR, name="Bob", phone="+14155550112", customers=[customer])
    carol = make_user(Role.ADMIN, name="Carol", phone="+14155550113", customers=[customer])
    dave = make_user(Role.ADMIN, name="Dave", phone="+14155550114", customers=[])
    return alice, bob, carol, dave


def make_policy(customer, *steps: dict, repeat: int = 0, rule: dict | None = None) -> EscalationPolicy:
    policy = EscalationPolicy(
        customer_id=customer.id if customer else None,
        name="Storage on-call",
        repeat=repeat,
        steps=[EscalationStep(position=i, **{"user_ids": [], **step}) for i, step in enumerate(steps)],
    )
    db.session.add(policy)
    db.session.flush()
    db.session.add(EscalationRule(policy_id=policy.id, customer_id=customer.id if customer else None, **(rule or {})))
    db.session.commit()
    return policy


def fire(customer, key: str = "fp-1", *, at: datetime = T0, severity=Severity.CRITICAL) -> Incident:
    item = NormalisedEvent(
        source="alertmanager",
        dedup_key=key,
        status=EventStatus.FIRING,
        severity=severity,
        title="DiskFull on db-1",
        customer_id=customer.id,
    )
    result = ingest.ingest([item], now=at)
    db.session.commit()
    [incident] = result.opened
    return incident


def reached(event: Event) -> dict[str, set[str]]:
    """{user name: channels} of the notifications going out (or in the app) for `event`."""
    out: dict[str, set[str]] = {}
    for note in db.session.scalars(db.select(Notification).where(Notification.event_id == event.id)):
        if note.status not in ("suppressed",):
            out.setdefault(note.user.name, set()).add(str(note.channel))
    return out


def opening(incident: Incident) -> Event:
    return db.session.scalar(
        db.select(Event).where(Event.incident_id == incident.id, Event.source != "escalation").order_by(Event.id)
    )


def steps_taken(incident_id: int) -> list[Event]:
    return list(
        db.session.scalars(
            db.select(Event).where(Event.incident_id == incident_id, Event.source == "escalation").order_by(Event.id)
        )
    )


def test_three_step_policy_walks_its_waits_and_an_ack_at_step_two_stops_it(app, customer, people):
    alice, bob, carol, dave = people
    make_policy(
        customer,
        {"user_ids": [alice.id], "wait_minutes": 10},
        {"user_ids": [bob.id], "wait_minutes": 20, "channel": "sms"},
        {"role": Role.ADMIN, "role_scope": "all", "wait_minutes": 5},
    )
    incident = fire(customer)

    # Step 1 when it opens: Alice alone, by her preferences (an operator's default: SMS for a critical alert),
    # not the admins a critical alert paged before policies.
    assert set(reached(opening(incident))) == {"Alice"}
    assert "sms" in reached(opening(incident))["Alice"]
    incident = db.session.get(Incident, incident.id)
    assert incident.next_escalation_at == minutes(10)

    assert escalation.escalate(now=minutes(9)).escalated == []  # her wait is not over
    assert sla.check_sla(now=minutes(10)).escalated == [f"incident {incident.id} level 1"]
    assert sla.check_sla(now=minutes(10)).escalated == []  # a second sweep at the same moment takes nothing
    db.session.commit()
    [step2] = steps_taken(incident.id)
    assert reached(step2) == {"Bob": {"sms"}}  # the step forces SMS
    assert db.session.get(Incident, incident.id).next_escalation_at == minutes(30)

    acks.acknowledge(db.session.get(Incident, incident.id), by=bob, via="web", now=minutes(12))
    db.session.commit()
    assert sla.check_sla(now=minutes(30)).escalated == []
    assert sla.check_sla(now=minutes(120)).escalated == []
    assert len(steps_taken(incident.id)) == 1  # step 3 (the admins) never came
    paged = set(db.session.scalars(db.select(Notification.user_id).where(Notification.status != "suppressed")))
    assert carol.id not in paged and dave.id not in paged

    timeline = [
        e.body
        for e in db.session.scalars(
            db.select(IncidentEntry).where(IncidentEntry.incident_id == incident.id).order_by(IncidentEntry.id)
        )
    ]
    assert any(line.startswith("Paged — step 1 of Storage on-call") and "Alice" in line for line in timeline)
    assert any("step 2 of Storage on-call" in line and "Bob" in line and "by sms" in line for line in timeline)


def test_without_an_ack_the_chain_repeats_then_stops(app, customer, people):
    alice, bob, carol, dave = people
    make_policy(
        customer, {"user_ids": [alice.id], "wait_minutes": 5}, {"user_ids": [bob.id], "wait_minutes": 5}, repeat=1
    )
    incident = fire(customer)
    taken = [sla.check_sla(now=minutes(m)).escalated for m in (5, 10, 15, 20, 25, 60)]
    db.session.commit()
    assert taken == [[f"incident {incident.id} level {n}"] for n in (1, 2, 3)] + [[], [], []]
    assert [set(reached(e)) for e in steps_taken(incident.id)] == [{"Bob"}, {"Alice"}, {"Bob"}]


def test_a_role_step_reaches_the_customers_users_of_that_role(app, customer, people, make_customer, make_user):
    alice, bob, carol, dave = people
    make_policy(customer, {"user_ids": [alice.id], "wait_minutes": 1}, {"role": Role.ADMIN, "wait_minutes": 1})
    incident = fire(customer)
    escalation.escalate(now=minutes(1))
    db.session.commit()
    assert set(reached(steps_taken(incident.id)[0])) == {"Carol"}  # the customer's admin, not Dave


def test_a_customers_rule_never_routes_another_customers_alerts(app, customer, people, make_customer):
    alice, *_ = people
    make_policy(customer, {"user_ids": [alice.id], "wait_minutes": 10})
    other = make_customer("Globex")
    incident = fire(other, "fp-other")
    assert db.session.get(Incident, incident.id).policy_id is None  # the default policy
    assert "Alice" not in reached(opening(incident))


def test_rules_match_on_severity_and_source(app, customer, people):
    alice, *_ = people
    policy = make_policy(
        customer,
        {"user_ids": [alice.id], "wait_minutes": 10},
        rule={"min_severity": Severity.HIGH, "source": "alertmanager"},
    )
    low = fire(customer, "fp-low", severity=Severity.LOW)
    high = fire(customer, "fp-high", severity=Severity.HIGH)
    assert db.session.get(Incident, low.id).policy_id is None
    assert db.session.get(Incident, high.id).policy_id == policy.id


def test_escalate_now_takes_the_next_step_at_once_and_once(app, customer, people):
    alice, bob, *_ = people
    make_policy(customer, {"user_ids": [alice.id], "wait_minutes": 30}, {"user_ids": [bob.id], "wait_minutes": 30})
    incident = fire(customer)
    assert escalation.escalate_now(incident.id, now=minutes(2)).escalated == [f"incident {incident.id} level 1"]
    db.session.commit()
    assert [set(reached(e)) for e in steps_taken(incident.id)] == [{"Bob"}]
    assert escalation.escalate_now(incident.id, now=minutes(3)).escalated == []  # the chain is over
    acks.acknowledge(db.session.get(Incident, incident.id), by=bob, via="web", now=minutes(4))
    db.session.commit()
    assert escalation.escalate_now(incident.id, now=minutes(5)).escalated == []


@pytest.mark.parametrize("stored", [True, False], ids=["stored default", "built-in default"])
def test_the_default_policy_keeps_the_sla_escalation(app, customer, people, stored):
    alice, bob, carol, dave = people
    if stored:  # as the migration makes it
        db.session.add(policies.builtin_default())
    for priority in (Priority.NORMAL, Priority.URGENT):
        db.session.add(
            SlaPolicy(
                customer_id=customer.id,
                priority=priority,
                resolution_minutes=60,
                escalation_minutes=30,
                escalation_interval_minutes=15,
                escalation_limit=3,
            )
        )
    db.session.commit()
    incident = fire(customer)
    assert {"Carol", "Dave"} <= set(reached(opening(incident)))  # admins: critical alerts by SMS, as before
    assert db.session.get(Incident, incident.id).next_escalation_at == minutes(30)
    taken = [sla.check_sla(now=minutes(m)).escalated for m in (30, 45, 60, 75)]
    db.session.commit()
    assert taken == [[f"incident {incident.id} level {n}"] for n in (1, 2, 3)] + [[]]
    assert [set(reached(e)) for e in steps_taken(incident.id)] == [{"Carol"}, {"Carol", "Dave"}, {"Carol", "Dave"}]


def test_a_schedule_step_pages_whoever_is_on_call_then(app, customer, people):
    alice, bob, carol, dave = people
    # Weekly hand-offs Wednesdays 09:00 Paris from 2026-03-18: Alice, Bob, Carol; T0 (Wed 1 April 10:00 Paris) is
    # Carol's week; an override gives Bob 09:00-11:00 that morning.
    schedule = weekly_rotation(customer.id, [alice.id, bob.id, carol.id], starts_on=date(2026, 3, 18))
    schedule.name = "Storage weekly"
    db.session.add(
        ScheduleOverride(schedule_id=schedule.id, user_id=bob.id, starts_at=minutes(-60), ends_at=minutes(60))
    )
    db.session.commit()
    make_policy(
        customer,
        {"schedule_id": schedule.id, "wait_minutes": 90},
        {"schedule_id": schedule.id, "user_ids": [dave.id], "wait_minutes": 5},
    )
    incident = fire(customer)
    assert set(reached(opening(incident))) == {"Bob"}  # the override, not Carol's week nor the admins
    escalation.escalate(now=minutes(90))  # the override is over: Carol's week (and Dave)
    db.session.commit()
    assert set(reached(steps_taken(incident.id)[0])) == {"Carol", "Dave"}
    line = db.session.scalar(
        db.select(IncidentEntry.body).where(IncidentEntry.kind == "escalated", IncidentEntry.incident_id == incident.id)
    )
    assert "the on-call of schedule “Storage weekly”" in line and "Carol" in line


# --- the routing preview and explain say which step reaches whom, and when ---------------------------------


def test_the_preview_shows_each_step_whom_it_reaches_and_when(app, client, customer, people, key_for):  # noqa: F811
    alice, bob, carol, dave = people
    make_policy(
        customer,
        {"user_ids": [alice.id], "wait_minutes": 10},
        {"user_ids": [bob.id], "wait_minutes": 20, "channel": "sms"},
        {"role": Role.ADMIN, "role_scope": "customer", "wait_minutes": 5},
    )
    headers = key_for()
    at = "2026-04-01T08:00:00+00:00"
    body = {"event": {"type": "alert", "severity": "critical", "customer": customer.id, "title": "Disk"}, "at": at}
    answer = client.post(PREVIEW, json=body, headers=headers)
    assert answer.status_code == 200, answer.json
    assert {d["user"]["name"] for d in answer.json["decisions"] if d["decision"] != "suppressed"} == {"Alice"}
    [plan] = answer.json["escalation"]
    assert plan["policy"] == "Storage on-call"
    assert [(s["step"], s["at"], s["reaches"], s["channel"]) for s in plan["steps"]] == [
        (1, "2026-04-01T08:00:00+00:00", ["Alice"], "their preferences"),
        (2, "2026-04-01T08:10:00+00:00", ["Bob"], "sms"),
        (3, "2026-04-01T08:30:00+00:00", ["Carol"], "their preferences"),
    ]


def test_explain_says_which_step_reaches_the_user_and_whether_it_was_taken(app, customer, people):
    from webapp.services.routing import explain

    alice, bob, carol, dave = people
    make_policy(customer, {"user_ids": [alice.id], "wait_minutes": 10}, {"user_ids": [bob.id], "wait_minutes": 20})
    incident = fire(customer)
    first = opening(incident)
    answer = explain.for_user(first, bob)["escalation"]
    assert answer["policy"] == "Storage on-call"
    assert [(s["step"], s["at"], s["taken"]) for s in answer["steps"]] == [(2, minutes(10).isoformat(), False)]
    assert "would reach them at 2026-04-01 08:10 UTC" in answer["steps"][0]["explanation"]
    escalation.escalate(now=minutes(10))
    db.session.commit()
    answer = explain.for_user(first, bob)["escalation"]
    assert answer["steps"][0]["taken"] is True
    assert explain.for_user(first, carol)["escalation"]["steps"] == []  # no step of this policy reaches her


def test_the_incident_pages_why_not_answer_names_the_step(app, client, login_as, customer, people):
    alice, bob, *_ = people
    make_policy(customer, {"user_ids": [alice.id], "wait_minutes": 10}, {"user_ids": [bob.id], "wait_minutes": 20})
    incident = fire(customer)
    login_as(Role.ADMIN)
    page = client.get(f"/incidents/{incident.id}", query_string={"explain": bob.id})
    answer = page.text.split('id="explain-answer"')[1].split("</div>")[0]
    assert "Escalation policy <strong>Storage on-call</strong>" in answer
    assert "step 2 (chosen users) would reach them at 2026-04-01 08:10 UTC" in answer


def test_the_migration_stores_the_built_in_default_and_one_default_only(migrated):  # noqa: F811
    def shape(steps):
        return [(s.position, s.everyone, s.role, s.role_scope, s.user_ids, s.schedule_id, s.channel) for s in steps]

    [stored] = db.session.scalars(db.select(EscalationPolicy)).all()
    assert (stored.name, stored.is_default, stored.sla_timing, stored.repeat) == (
        "Default (SLA escalation)",
        True,
        True,
        0,
    )
    assert shape(stored.steps) == shape(policies.builtin_default().steps)
    assert policies.snapshot().policies[None] is stored  # what incidents with no rule walk
    db.session.add(EscalationPolicy(name="Second default", is_default=True))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()
    db.session.remove()
    downgrade(revision="c4a7e1d93b52")
    upgrade()
    assert db.session.scalar(db.select(db.func.count(EscalationPolicy.id))) == 1
