"""Escalation policies: the list (with the routing rules that choose them), a policy's page (its steps in order,
add and remove a step), create, edit, delete; add and remove a routing rule.

Whoever signs in reads their customers' policies (admins: all, the global ones included); operators change
their customers', admins every one. The views parse the forms and call webapp.services.routing.policy_admin,
which checks the tenant boundary, validates and audits.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from wtforms import SelectField, SelectMultipleField

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.menu import MENU, MenuItem
from webapp.admin.ops_forms import ConfirmForm, customer_choices, user_choices
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import EscalationPolicy, Role
from webapp.security import role_required
from webapp.services.people import customers
from webapp.services.routing import policy_admin
from webapp.services.routing.policy_admin import POLICY, RULE, STEP

MENU.append(MenuItem("admin.escalation_policy_list", "Escalation policies", Role.VIEWER, "Configuration"))


class PolicyForm(POLICY.form("PolicyFields")):
    customer = SelectField("Customer", choices=[])
    inputs = {"customer_id": "customer"}


PolicyEditForm = POLICY.form("PolicyEditForm")


class StepForm(STEP.form("StepFields")):
    users = SelectMultipleField("Users", choices=[])
    schedule = SelectField("On-call of schedule", choices=[("", "(none)")], validate_choice=False)
    inputs = {"user_ids": "users", "schedule_id": "schedule"}


class RuleForm(RULE.form("RuleFields")):
    customer = SelectField("Customer", choices=[], id="rule-customer")  # the policy form's beside it is "customer"
    policy = SelectField("Escalation policy", choices=[])
    inputs = {"customer_id": "customer", "policy_id": "policy"}


def _customers(principal) -> list[tuple[str, str]]:
    choices = customer_choices(principal)
    return [("", "(all customers)"), *choices] if principal.sees_all else choices


def _policy_form(**kwargs) -> PolicyForm:
    form = PolicyForm(**kwargs)
    form.customer.choices = _customers(tenancy.current())
    return form


def _step_form(policy: EscalationPolicy, **kwargs) -> StepForm:
    form = StepForm(**kwargs)
    form.users.choices = user_choices(tenancy.current())
    form.schedule.choices = [("", "(none)"), *policy_admin.schedule_choices(tenancy.current(), policy)]
    return form


def _rule_form(**kwargs) -> RuleForm:
    principal = tenancy.current()
    form = RuleForm(**kwargs)
    form.customer.choices = _customers(principal)
    form.policy.choices = [(str(p.id), _label(p)) for p in policy_admin.visible(principal)]
    return form


def _label(policy: EscalationPolicy) -> str:
    return f"{policy.name} (default)" if policy.is_default else policy.name


def _render_list(*, form=None, rule_form=None, status: int = 200):
    principal = tenancy.current()
    rows, rules = policy_admin.visible(principal), policy_admin.visible_rules(principal)
    writer = current_user.has_role(Role.OPERATOR)
    page = render_template(
        "admin/escalation/list.html",
        policies=rows,
        rules=rules,
        names=customers.names_of({p.customer_id for p in rows} | {r.customer_id for r in rules}),
        policy_names={p.id: _label(p) for p in rows},
        writer=writer,
        form=(form or _policy_form(formdata=None)) if writer else None,
        rule_form=(rule_form or _rule_form(formdata=None)) if writer else None,
        confirm=ConfirmForm(),
    )
    return page, status


@bp.get("/escalation-policies")
def escalation_policy_list():
    return _render_list()


@bp.post("/escalation-policies")
@role_required(Role.OPERATOR)
def escalation_policy_create():
    form = _policy_form()
    if not form.validate_on_submit():
        return _render_list(form=form, status=422)
    try:
        policy = policy_admin.create(tenancy.current(), form.payload(), form.customer.data)
    except InvalidPayload as exc:
        db.session.rollback()
        form.show(exc)
        return _render_list(form=form, status=422)
    db.session.commit()
    flash(f"Escalation policy “{policy.name}” created: add its steps.", "success")
    return redirect(url_for("admin.escalation_policy_detail", policy_id=policy.id))


def _render_detail(policy: EscalationPolicy, *, form=None, step_form=None, status: int = 200):
    principal = tenancy.current()
    writer = current_user.has_role(Role.OPERATOR) and principal.can_change(policy.customer_id)
    page = render_template(
        "admin/escalation/detail.html",
        policy=policy,
        steps=[(s, policy_admin.step_words(s)) for s in policy.steps],
        customer_name=customers.names_of([policy.customer_id]).get(policy.customer_id) if policy.customer_id else None,
        writer=writer,
        form=(form or PolicyEditForm(formdata=None, data=POLICY.form_data(POLICY.values_of(policy))))
        if writer
        else None,
        step_form=(step_form or _step_form(policy, formdata=None)) if writer else None,
        confirm=ConfirmForm(),
    )
    return page, status


@bp.get("/escalation-policies/<int:policy_id>")
def escalation_policy_detail(policy_id: int):
    return _render_detail(policy_admin.get(tenancy.current(), policy_id))


@bp.post("/escalation-policies/<int:policy_id>")
@role_required(Role.OPERATOR)
def escalation_policy_edit(policy_id: int):
    principal = tenancy.current()
    policy = policy_admin.get(principal, policy_id)
    form = PolicyEditForm()
    if form.validate_on_submit():
        try:
            policy_admin.update(principal, policy, form.payload())
        except InvalidPayload as exc:
            db.session.rollback()
            form.show(exc)
        else:
            db.session.commit()
            flash("Escalation policy saved.", "success")
            return redirect(url_for("admin.escalation_policy_detail", policy_id=policy.id))
    return _render_detail(policy_admin.get(principal, policy_id), form=form, status=422)


@bp.post("/escalation-policies/<int:policy_id>/delete")
@role_required(Role.OPERATOR)
def escalation_policy_delete(policy_id: int):
    principal = tenancy.current()
    policy = policy_admin.get(principal, policy_id)
    _confirmed()
    try:
        policy_admin.delete(principal, policy)
    except InvalidPayload as exc:
        flash(exc.message, "danger")
        return redirect(url_for("admin.escalation_policy_detail", policy_id=policy.id))
    db.session.commit()
    flash("Escalation policy deleted, with the routing rules that chose it.", "success")
    return redirect(url_for("admin.escalation_policy_list"))


@bp.post("/escalation-policies/<int:policy_id>/steps")
@role_required(Role.OPERATOR)
def escalation_step_add(policy_id: int):
    principal = tenancy.current()
    policy = policy_admin.get(principal, policy_id)
    form = _step_form(policy)
    if form.validate_on_submit():
        try:
            policy_admin.add_step(
                principal, policy, form.payload(), user_ids=form.users.data or [], schedule_id=form.schedule.data
            )
        except InvalidPayload as exc:
            db.session.rollback()
            form.show(exc)
        else:
            db.session.commit()
            flash("Step added.", "success")
            return redirect(url_for("admin.escalation_policy_detail", policy_id=policy.id))
    return _render_detail(policy_admin.get(principal, policy_id), step_form=form, status=422)


@bp.post("/escalation-policies/<int:policy_id>/steps/<int:step_id>/delete")
@role_required(Role.OPERATOR)
def escalation_step_delete(policy_id: int, step_id: int):
    principal = tenancy.current()
    policy = policy_admin.get(principal, policy_id)
    _confirmed()
    policy_admin.remove_step(principal, policy, step_id)
    db.session.commit()
    flash("Step removed.", "success")
    return redirect(url_for("admin.escalation_policy_detail", policy_id=policy.id))


@bp.post("/escalation-policies/<int:policy_id>/steps/<int:step_id>/up")
@role_required(Role.OPERATOR)
def escalation_step_up(policy_id: int, step_id: int):
    principal = tenancy.current()
    policy = policy_admin.get(principal, policy_id)
    _confirmed()
    policy_admin.move_step_up(principal, policy, step_id)
    db.session.commit()
    flash("Step moved up.", "success")
    return redirect(url_for("admin.escalation_policy_detail", policy_id=policy.id))


@bp.post("/escalation-rules")
@role_required(Role.OPERATOR)
def escalation_rule_create():
    form = _rule_form()
    if not form.validate_on_submit():
        return _render_list(rule_form=form, status=422)
    try:
        policy_admin.add_rule(
            tenancy.current(), form.payload(), customer_id=form.customer.data, policy_id=form.policy.data
        )
    except InvalidPayload as exc:
        db.session.rollback()
        form.show(exc)
        return _render_list(rule_form=form, status=422)
    db.session.commit()
    flash("Routing rule added: new incidents it matches walk its policy.", "success")
    return redirect(url_for("admin.escalation_policy_list"))


@bp.post("/escalation-rules/<int:rule_id>/delete")
@role_required(Role.OPERATOR)
def escalation_rule_delete(rule_id: int):
    _confirmed()
    policy_admin.remove_rule(tenancy.current(), rule_id)
    db.session.commit()
    flash("Routing rule removed.", "success")
    return redirect(url_for("admin.escalation_policy_list"))


def _confirmed() -> None:
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired: reload the page.")
