"""On-call schedules: the list (with who is on call now), a schedule's page (timeline, on call now and next,
its layers and overrides), and each person's calendar feed address.

Admins change every schedule, operators their customers', viewers read them (services.oncall.schedules)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import BooleanField, SelectField

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.menu import MENU, MenuItem
from webapp.admin.ops_forms import ConfirmForm, customer_choices, user_choices
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import Role, Schedule, ScheduleLayer, ScheduleOverride, User, utcnow
from webapp.security import role_required
from webapp.services.oncall import on_call_user_ids
from webapp.services.oncall import schedules as service
from webapp.services.oncall import timeline as timelines
from webapp.services.oncall.feeds import WEEKS, has_feed, regenerate
from webapp.services.people import customers

MENU.append(MenuItem("admin.schedule_list", "On-call schedules", Role.VIEWER, "People"))


class ScheduleForm(service.SCHEDULE.form("ScheduleFields")):
    customer = SelectField("Customer", choices=[], validate_choice=False)
    inputs = {"customer_id": "customer"}


class EditScheduleForm(service.SCHEDULE.form("EditScheduleFields")):
    """Beside the layer form on the same page: its inputs are prefixed (both have a name)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="schedule", **kwargs)


class LayerForm(service.LAYER.form("LayerFields")):
    pass


class OverrideForm(service.OVERRIDE.form("OverrideFields")):
    user = SelectField("Who covers", choices=[], validate_choice=False)
    force = BooleanField("Create it anyway (I have read the warnings)")


FAILED = object()  # what _written returns when the form was refused


def _written(form, write: Callable[[dict], Any]) -> Any:
    """`write(payload)` for a valid form, or FAILED: the messages are on the form, the session rolled back."""
    if not form.validate_on_submit():
        return FAILED
    try:
        return write(form.payload())
    except InvalidPayload as exc:
        db.session.rollback()
        form.show(exc)
        return FAILED


def _changeable(schedule_id: int) -> tuple[tenancy.Principal, Schedule]:
    """The schedule, if the principal may change it (404 for another tenant's, 403 for a viewer)."""
    principal = tenancy.current()
    schedule = service.visible(principal, schedule_id)
    principal.check_change(schedule.customer_id)
    return principal, schedule


def _writer(schedule: Schedule | None = None) -> bool:
    principal = tenancy.current()
    if schedule is None:
        return principal.allows(Role.OPERATOR)
    return principal.can_change(schedule.customer_id)


def _new_schedule_form(**kwargs) -> ScheduleForm:
    form = ScheduleForm(**kwargs)
    principal = tenancy.current()
    form.customer.choices = ([("", "— operations team (every customer) —")] if principal.allows(Role.ADMIN) else []) + [
        *customer_choices(principal)
    ]
    return form


def _render_list(form: ScheduleForm | None = None, status: int = 200):
    principal = tenancy.current()
    rows = list(
        db.session.scalars(
            service.scoped(principal, db.select(Schedule).order_by(Schedule.name, Schedule.id)).limit(500)
        )
    )
    on_call = on_call_user_ids([s.id for s in rows], utcnow())
    user_ids = {u for ids in on_call.values() for u in ids}
    names = (
        dict(db.session.execute(db.select(User.id, User.name).where(User.id.in_(user_ids))).all()) if user_ids else {}
    )
    writer = _writer()
    return (
        render_template(
            "admin/schedules/list.html",
            schedules=rows,
            customer_names=customers.names_of(s.customer_id for s in rows if s.customer_id is not None),
            on_call={sid: [names.get(u, "?") for u in ids] for sid, ids in on_call.items()},
            writer=writer,
            form=(form or _new_schedule_form(formdata=None)) if writer else None,
        ),
        status,
    )


@bp.get("/schedules")
def schedule_list():
    return _render_list()


@bp.post("/schedules")
@role_required(Role.OPERATOR)
def schedule_create():
    form = _new_schedule_form()
    customer = form.customer.data or ""
    chosen = int(customer) if customer.isdigit() else customer or None
    schedule = _written(form, lambda payload: service.create(tenancy.current(), {**payload, "customer_id": chosen}))
    if schedule is FAILED:
        return _render_list(form, 422)
    db.session.commit()
    flash(f"Schedule “{schedule.name}” created: add a layer of people to it.", "success")
    return redirect(url_for("admin.schedule_detail", schedule_id=schedule.id))


def _day_arg() -> date | None:
    text = request.args.get("start", "")
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        abort(400, description="start must be a date, YYYY-MM-DD.")


def _override_form(schedule: Schedule, **kwargs) -> OverrideForm:
    form = OverrideForm(**kwargs)
    people = [(str(u.id), u.name) for u in service.eligible_members(schedule.customer_id)]
    seen = {value for value, _ in people}
    others = [(value, name) for value, name in user_choices(tenancy.current()) if value not in seen]
    form.user.choices = people + others
    return form


def _render_detail(
    schedule: Schedule,
    *,
    edit_form=None,
    layer_form=None,
    override_form=None,
    warnings: list[str] | None = None,
    status: int = 200,
):
    view = request.args.get("view", "week")
    writer = _writer(schedule)
    current, upcoming = service.now_and_next(schedule)
    people = {u.id: u for u in service.eligible_members(schedule.customer_id)}
    shift_users = {s.user_id for s in (current, upcoming) if s is not None}
    missing = shift_users - people.keys()
    if missing:
        people.update({u.id: u for u in db.session.scalars(db.select(User).where(User.id.in_(missing)))})
    overrides = list(
        db.session.scalars(
            db.select(ScheduleOverride)
            .where(ScheduleOverride.schedule_id == schedule.id, ScheduleOverride.ends_at > utcnow())
            .order_by(ScheduleOverride.starts_at)
            .limit(100)
        )
    )
    return (
        render_template(
            "admin/schedules/detail.html",
            schedule=schedule,
            customer_name=customers.names_of([schedule.customer_id]).get(schedule.customer_id)
            if schedule.customer_id
            else None,
            timeline=timelines.build(schedule, view=view, day=_day_arg()),
            current=current,
            upcoming=upcoming,
            people=people,
            member_emails={u.id: u.email for u in people.values()},
            overrides=overrides,
            zone=service.zone_of(schedule.time_zone),
            describe_window=service.describe_window,
            writer=writer,
            edit_form=(
                edit_form
                or EditScheduleForm(
                    formdata=None, data=service.SCHEDULE.form_data(service.SCHEDULE.values_of(schedule))
                )
            )
            if writer
            else None,
            layer_form=(layer_form or LayerForm(formdata=None)) if writer else None,
            override_form=(override_form or _override_form(schedule, formdata=None)) if writer else None,
            warnings=warnings or [],
        ),
        status,
    )


@bp.get("/schedules/<int:schedule_id>")
def schedule_detail(schedule_id: int):
    return _render_detail(service.visible(tenancy.current(), schedule_id))


@bp.post("/schedules/<int:schedule_id>")
@role_required(Role.OPERATOR)
def schedule_edit(schedule_id: int):
    principal, schedule = _changeable(schedule_id)
    form = EditScheduleForm()
    changes = _written(form, lambda payload: service.update(principal, schedule, payload))
    if changes is FAILED:
        return _render_detail(service.visible(principal, schedule_id), edit_form=form, status=422)
    db.session.commit()
    flash("Schedule saved." if changes else "Nothing changed.", "success")
    return redirect(url_for("admin.schedule_detail", schedule_id=schedule_id))


@bp.post("/schedules/<int:schedule_id>/delete")
@role_required(Role.OPERATOR)
def schedule_delete(schedule_id: int):
    principal = tenancy.current()
    schedule = service.visible(principal, schedule_id)
    if ConfirmForm().validate_on_submit():
        name = schedule.name
        service.delete(principal, schedule)
        db.session.commit()
        flash(f"Schedule “{name}” deleted.", "success")
    return redirect(url_for("admin.schedule_list"))


@bp.post("/schedules/<int:schedule_id>/layers")
@role_required(Role.OPERATOR)
def schedule_layer_create(schedule_id: int):
    principal, schedule = _changeable(schedule_id)
    form = LayerForm()
    layer = _written(form, lambda payload: service.add_layer(principal, schedule, payload))
    if layer is FAILED:
        return _render_detail(service.visible(principal, schedule_id), layer_form=form, status=422)
    db.session.commit()
    flash(f"Layer “{layer.name}” added.", "success")
    return redirect(url_for("admin.schedule_detail", schedule_id=schedule_id))


def _layer_form_of(layer: ScheduleLayer) -> LayerForm:
    emails = dict(db.session.execute(db.select(User.id, User.email).where(User.id.in_(layer.member_ids or []))).all())
    values = service.LAYER.values_of(layer)
    values["members"] = [emails.get(i, f"#{i}") for i in layer.member_ids or []]
    return LayerForm(formdata=None, data=service.LAYER.form_data(values))


def _render_layer(schedule: Schedule, layer: ScheduleLayer, form: LayerForm | None = None, status: int = 200):
    writer = _writer(schedule)
    return (
        render_template(
            "admin/schedules/layer.html",
            schedule=schedule,
            layer=layer,
            form=form or _layer_form_of(layer),
            writer=writer,
            people=service.eligible_members(schedule.customer_id),
        ),
        status,
    )


@bp.get("/schedules/layers/<int:layer_id>")
def schedule_layer(layer_id: int):
    layer = service.visible_layer(tenancy.current(), layer_id)
    return _render_layer(layer.schedule, layer)


@bp.post("/schedules/layers/<int:layer_id>")
@role_required(Role.OPERATOR)
def schedule_layer_edit(layer_id: int):
    principal = tenancy.current()
    layer = service.visible_layer(principal, layer_id)
    schedule_id = layer.schedule_id
    principal.check_change(layer.schedule.customer_id)
    form = LayerForm()
    changes = _written(form, lambda payload: service.update_layer(principal, layer, payload))
    if changes is FAILED:
        layer = service.visible_layer(principal, layer_id)
        return _render_layer(layer.schedule, layer, form, 422)
    db.session.commit()
    flash("Layer saved." if changes else "Nothing changed.", "success")
    return redirect(url_for("admin.schedule_detail", schedule_id=schedule_id))


@bp.post("/schedules/layers/<int:layer_id>/delete")
@role_required(Role.OPERATOR)
def schedule_layer_delete(layer_id: int):
    principal = tenancy.current()
    layer = service.visible_layer(principal, layer_id)
    schedule_id = layer.schedule_id
    principal.check_change(layer.schedule.customer_id)
    if ConfirmForm().validate_on_submit():
        service.delete_layer(principal, layer)
        db.session.commit()
        flash("Layer removed.", "success")
    return redirect(url_for("admin.schedule_detail", schedule_id=schedule_id))


@bp.post("/schedules/<int:schedule_id>/overrides")
@role_required(Role.OPERATOR)
def schedule_override_create(schedule_id: int):
    principal, schedule = _changeable(schedule_id)
    form = _override_form(schedule)
    plan = _written(form, lambda payload: service.plan_override(principal, schedule, payload))
    if plan is FAILED:
        return _render_detail(service.visible(principal, schedule_id), override_form=form, status=422)
    if plan.warnings and not form.force.data:
        return _render_detail(schedule, override_form=form, warnings=plan.warnings, status=409)
    service.add_override(principal, schedule, plan)
    db.session.commit()
    flash(f"Override added: {plan.user.name} covers those hours.", "success")
    return redirect(url_for("admin.schedule_detail", schedule_id=schedule_id))


@bp.post("/schedules/overrides/<int:override_id>/delete")
@role_required(Role.OPERATOR)
def schedule_override_delete(override_id: int):
    principal = tenancy.current()
    override = service.visible_override(principal, override_id)
    schedule_id = override.schedule_id
    if ConfirmForm().validate_on_submit():
        service.delete_override(principal, override)
        db.session.commit()
        flash("Override removed.", "success")
    return redirect(url_for("admin.schedule_detail", schedule_id=schedule_id))


@bp.get("/schedules/feed")
def schedule_feed():
    """The signed-in person's own calendar feed: whether they have one, and a button for a new address."""
    return render_template("admin/schedules/feed.html", has_feed=has_feed(current_user), token=None, weeks=WEEKS)


@bp.post("/schedules/feed")
def schedule_feed_regenerate():
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired: reload the page and try again.")
    token = regenerate(current_user)
    db.session.commit()
    url = f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}{url_for('ops.schedule_ical', token=token)}"
    return render_template("admin/schedules/feed.html", has_feed=True, token=token, url=url, weeks=WEEKS)
