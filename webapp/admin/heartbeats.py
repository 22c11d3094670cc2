"""Heartbeats: list (last check-in, state, check-in URL), create (the token is shown once), pause and resume.

Operators and admins change their customers' heartbeats; viewers see them."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.menu import MENU, MenuItem
from webapp.admin.ops_forms import ConfirmForm, customer_choices
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import Heartbeat, Role
from webapp.security import role_required
from webapp.services.monitoring import heartbeats
from webapp.services.monitoring.heartbeats import HEARTBEAT
from webapp.services.people import customers

MENU.append(MenuItem("admin.heartbeat_list", "Heartbeats", Role.VIEWER, "Incidents"))


class HeartbeatForm(HEARTBEAT.form("HeartbeatFields")):
    customer = SelectField("Customer", choices=[], validators=[InputRequired(message="Pick a customer.")])
    inputs = {"customer_id": "customer"}


def _form(**kwargs) -> HeartbeatForm:
    form = HeartbeatForm(**kwargs)
    form.customer.choices = customer_choices(tenancy.current())
    return form


def _render(form: FlaskForm | None = None, *, shown: tuple[Heartbeat, str] | None = None, status: int = 200):
    principal = tenancy.current()
    rows = list(
        db.session.scalars(
            heartbeats.scoped(principal, db.select(Heartbeat).order_by(Heartbeat.name, Heartbeat.id)).limit(500)
        )
    )
    names = customers.names_of(h.customer_id for h in rows)
    writer = current_user.has_role(Role.OPERATOR)
    return (
        render_template(
            "admin/heartbeats/list.html",
            heartbeats=rows,
            customer_names=names,
            writer=writer,
            form=(form or _form(formdata=None)) if writer else None,
            shown=shown,
            base_url=current_app.config["PUBLIC_BASE_URL"],
        ),
        status,
    )


@bp.get("/heartbeats")
def heartbeat_list():
    return _render()


@bp.post("/heartbeats")
@role_required(Role.OPERATOR)
def heartbeat_create():
    form = _form()
    if not form.validate_on_submit():
        return _render(form, status=422)
    try:
        heartbeat, token = heartbeats.create(
            tenancy.current(), {**form.payload(), "customer_id": int(form.customer.data)}
        )
    except InvalidPayload as exc:
        db.session.rollback()
        form.show(exc)
        return _render(form, status=422)
    db.session.commit()
    flash(f"Heartbeat “{heartbeat.name}” created. Copy its token now: it is shown only this once.", "success")
    return _render(shown=(heartbeat, token))


@bp.post("/heartbeats/<int:heartbeat_id>/pause")
@role_required(Role.OPERATOR)
def heartbeat_pause(heartbeat_id: int):
    return _set_paused(heartbeat_id, True)


@bp.post("/heartbeats/<int:heartbeat_id>/resume")
@role_required(Role.OPERATOR)
def heartbeat_resume(heartbeat_id: int):
    return _set_paused(heartbeat_id, False)


def _set_paused(heartbeat_id: int, paused: bool):
    principal = tenancy.current()
    heartbeat = heartbeats.visible(principal, heartbeat_id)
    if ConfirmForm().validate_on_submit() and heartbeats.set_paused(principal, heartbeat, paused):
        db.session.commit()
        flash(f"“{heartbeat.name}” {'paused: no alert until it is resumed' if paused else 'resumed'}.", "success")
    return redirect(url_for("admin.heartbeat_list"))
