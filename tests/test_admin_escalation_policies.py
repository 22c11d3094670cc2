"""The escalation policy pages: an admin creates a policy, adds steps and a routing rule, and the next alert of
that customer walks it; an operator manages their customer's only; a viewer reads; bad input is a 422 that
changes nothing."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import EscalationPolicy, EscalationRule, EscalationStep, Role


def test_admin_builds_a_policy_with_steps_and_a_rule(client, login_as, customer, make_user):
    login_as(Role.ADMIN)
    alice = make_user(Role.OPERATOR, name="Alice Oncall", customers=[customer])
    page = client.post("/escalation-policies", data={"customer": str(customer.id), "name": "DB team", "repeat": "1"})
    assert page.status_code == 302
    policy = db.session.scalar(db.select(EscalationPolicy).where(EscalationPolicy.name == "DB team"))
    assert policy.customer_id == customer.id and policy.repeat == 1
    url = f"/escalation-policies/{policy.id}"
    added = client.post(
        f"{url}/steps", data={"users": [str(alice.id)], "wait_minutes": "10", "role": "", "role_scope": "customer"}
    )
    assert added.status_code == 302
    added = client.post(
        f"{url}/steps", data={"role": "admin", "role_scope": "all", "wait_minutes": "5", "channel": "sms"}
    )
    assert added.status_code == 302
    shown = client.get(url).text
    assert "Alice Oncall" in shown and "admins everywhere" in shown and "by sms" in shown
    rule = client.post(
        "/escalation-rules",
        data={"customer": str(customer.id), "source": "alertmanager", "min_severity": "high", "policy": str(policy.id)},
    )
    assert rule.status_code == 302
    listing = client.get("/escalation-policies").text
    assert "DB team" in listing and "high and above" in listing and "alertmanager" in listing


def test_a_step_that_reaches_nobody_is_refused(client, login_as, customer):
    login_as(Role.ADMIN)
    policy = EscalationPolicy(customer_id=customer.id, name="Empty", steps=[])
    db.session.add(policy)
    db.session.commit()
    page = client.post(f"/escalation-policies/{policy.id}/steps", data={"wait_minutes": "10", "role": ""})
    assert page.status_code == 422 and "Choose whom this step reaches" in page.text
    page = client.post(f"/escalation-policies/{policy.id}/steps", data={"wait_minutes": "-3", "everyone": "y"})
    assert page.status_code == 422
    assert db.session.scalar(db.select(db.func.count(EscalationStep.id))) == 0


def test_operator_manages_only_their_customers_policies(client, login_as, customer, make_customer, make_user):
    other = make_customer("Globex")
    foreign = EscalationPolicy(customer_id=other.id, name="Globex secret policy", steps=[])
    db.session.add(foreign)
    db.session.commit()
    login_as(Role.OPERATOR, customers=[customer])
    assert "Globex secret policy" not in client.get("/escalation-policies").text
    assert client.get(f"/escalation-policies/{foreign.id}").status_code == 404
    refused = client.post("/escalation-policies", data={"customer": str(other.id), "name": "Mine?", "repeat": "0"})
    assert refused.status_code == 422
    refused = client.post("/escalation-policies", data={"customer": "", "name": "Global?", "repeat": "0"})
    assert refused.status_code in (403, 422)
    made = client.post("/escalation-policies", data={"customer": str(customer.id), "name": "Ours", "repeat": "0"})
    assert made.status_code == 302
    outsider = make_user(Role.OPERATOR, name="Globex Person", customers=[other])
    ours = db.session.scalar(db.select(EscalationPolicy).where(EscalationPolicy.name == "Ours"))
    step = client.post(f"/escalation-policies/{ours.id}/steps", data={"users": [str(outsider.id)], "wait_minutes": "5"})
    assert step.status_code == 422 and not ours.steps
    rule = client.post("/escalation-rules", data={"customer": str(customer.id), "policy": str(foreign.id)})
    assert rule.status_code == 422
    assert db.session.scalar(db.select(db.func.count(EscalationRule.id))) == 0


def test_viewer_reads_but_does_not_change(client, login_as, customer):
    policy = EscalationPolicy(customer_id=customer.id, name="Read me", steps=[])
    db.session.add(policy)
    db.session.commit()
    login_as(Role.VIEWER, customers=[customer])
    page = client.get(f"/escalation-policies/{policy.id}")
    assert page.status_code == 200 and "Read me" in page.text and "Add a step" not in page.text
    assert client.post(f"/escalation-policies/{policy.id}", data={"name": "Changed", "repeat": "0"}).status_code == 403
    assert db.session.get(EscalationPolicy, policy.id).name == "Read me"


def test_the_default_policy_cannot_be_deleted(client, login_as):
    login_as(Role.ADMIN)
    from webapp.services.routing.policies import builtin_default

    policy = builtin_default()
    db.session.add(policy)
    db.session.commit()
    page = client.post(f"/escalation-policies/{policy.id}/delete", follow_redirects=True)
    assert "cannot be deleted" in page.text
    assert db.session.get(EscalationPolicy, policy.id) is not None


def test_steps_move_up_and_are_removed_in_order(client, login_as, customer, make_user):
    login_as(Role.ADMIN)
    alice = make_user(Role.OPERATOR, name="Alice First", customers=[customer])
    bob = make_user(Role.OPERATOR, name="Bob Second", customers=[customer])
    policy = EscalationPolicy(
        customer_id=customer.id,
        name="Order",
        steps=[
            EscalationStep(position=0, user_ids=[alice.id], wait_minutes=5),
            EscalationStep(position=1, user_ids=[bob.id], wait_minutes=5),
        ],
    )
    db.session.add(policy)
    db.session.commit()
    second = policy.steps[1].id
    assert client.post(f"/escalation-policies/{policy.id}/steps/{second}/up").status_code == 302
    db.session.expire_all()
    assert [s.user_ids for s in db.session.get(EscalationPolicy, policy.id).steps] == [[bob.id], [alice.id]]
    page = client.get(f"/escalation-policies/{policy.id}").text
    assert page.index("Bob Second") < page.index("Alice First")
    assert client.post(f"/escalation-policies/{policy.id}/steps/{second}/delete").status_code == 302
    db.session.expire_all()
    [left] = db.session.get(EscalationPolicy, policy.id).steps
    assert (left.position, left.user_ids) == (0, [alice.id])
