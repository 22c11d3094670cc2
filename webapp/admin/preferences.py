"""Notification preferences: my own, anyone's (admins), and one change for many users (admins).

The views parse the form and call webapp.services.people.preferences, which decides who may change whose
preferences, validates (the same checks and messages as the API's) and audits."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.forms import BulkPreferenceForm, PreferenceForm
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import Customer, Role, User
from webapp.security import role_required
from webapp.services.integrations import chat_channels
from webapp.services.people import preferences


def _edit(user: User, *, endpoint: str, **url_args):
    principal = tenancy.current()
    preferences.check_change(principal, user)
    pref = preferences.of(user)
    form = PreferenceForm(data=preferences.PREFERENCE.form_data(preferences.PREFERENCE.values_of(pref)))
    if form.validate_on_submit():
        new = pref.id is None
        try:
            changes = preferences.update(principal, pref, form.payload())
        except InvalidPayload as exc:
            form.show(exc)
        else:
            db.session.commit()
            saved = new or bool(changes)
            flash("Preferences saved." if saved else "Nothing changed.", "success" if saved else "info")
            return redirect(url_for(endpoint, **url_args))
    failed = bool(form.errors)
    stored = {f.name: chat_channels.secret_hint(getattr(pref, f.key)) for f in preferences.PREFERENCE.secrets}
    return render_template("admin/preferences/form.html", form=form, user=user, stored=stored), 400 if failed else 200


@bp.route("/preferences", methods=["GET", "POST"])
def my_preferences():
    return _edit(tenancy.current().user, endpoint="admin.my_preferences")


@bp.route("/users/<int:user_id>/preferences", methods=["GET", "POST"])
def user_preferences(user_id: int):
    user = db.get_or_404(User, user_id)
    return _edit(user, endpoint="admin.user_preferences", user_id=user.id)


@bp.route("/preferences/bulk", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def preference_bulk():
    principal = tenancy.current()
    query = db.select(User).where(User.is_active)
    if (visible := principal.visible_user_ids()) is not None:
        query = query.where(User.id.in_(visible))
    customer_id = request.args.get("customer", "")
    if customer_id.isdigit() and len(customer_id) < 10:
        query = query.where(User.customers.any(Customer.id == int(customer_id)))
    role = request.args.get("role", "")
    if role in {r.value for r in Role}:
        query = query.where(User.role == Role(role))
    people = db.session.scalars(query.order_by(User.name)).all()
    form = BulkPreferenceForm()
    form.users.choices = [(u.id, f"{u.name} <{u.email}> · {u.role.value}") for u in people]
    if form.validate_on_submit():
        on, off, payload = form.changes()
        try:
            count = preferences.bulk_update(
                principal, form.users.data, channels_on=on, channels_off=off, payload=payload
            )
        except InvalidPayload as exc:
            for name, message in exc.fields.items():
                getattr(form, name, form.aggregation).errors.append(message)
        else:
            db.session.commit()
            flash(f"Preferences changed for {count} users.", "success")
            return redirect(url_for("admin.preference_bulk"))
    return render_template(
        "admin/preferences/bulk.html",
        form=form,
        customers=principal.visible_customers(),
        customer_id=customer_id,
        role=role,
    ), 400 if form.errors else 200
