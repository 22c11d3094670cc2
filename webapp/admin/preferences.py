"""Notification preferences: my own, anyone's (admins), and one change for many users (admins)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.admin import bp
from webapp.admin.forms import BulkPreferenceForm, PreferenceForm
from webapp.extensions import db
from webapp.models import Customer, Role, User
from webapp.security import role_required
from webapp.services.people import preferences


def _edit(user: User, *, endpoint: str, **url_args):
    pref = preferences.default_for(user)
    form = PreferenceForm(obj=pref)
    if request.method == "GET":
        form.job_types.data = ", ".join(pref.job_types or [])
        for name in ("min_severity_web", "min_severity_email", "min_severity_sms"):
            getattr(form, name).data = getattr(pref, name).value
    if form.validate_on_submit():
        changed = preferences.update(pref, form.values(), by=current_user, target_user=user)
        db.session.commit()
        flash("Preferences saved." if changed else "Nothing changed.", "success" if changed else "info")
        return redirect(url_for(endpoint, **url_args))
    db.session.rollback()  # a default row made only to show the form is not kept
    return render_template("admin/preferences/form.html", form=form, user=user), 400 if form.errors else 200


@bp.route("/preferences", methods=["GET", "POST"])
def my_preferences():
    return _edit(current_user, endpoint="admin.my_preferences")


@bp.route("/users/<int:user_id>/preferences", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def user_preferences(user_id: int):
    user = db.get_or_404(User, user_id)
    return _edit(user, endpoint="admin.user_preferences", user_id=user.id)


@bp.route("/preferences/bulk", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def preference_bulk():
    query = db.select(User).where(User.is_active).order_by(User.name)
    customer_id = request.args.get("customer", "")
    if customer_id.isdigit() and len(customer_id) < 10:
        query = query.where(User.customers.any(Customer.id == int(customer_id)))
    role = request.args.get("role", "")
    if role in {r.value for r in Role}:
        query = query.where(User.role == Role(role))
    people = db.session.scalars(query).all()
    form = BulkPreferenceForm()
    form.users.choices = [(u.id, f"{u.name} <{u.email}> · {u.role.value}") for u in people]
    if form.validate_on_submit():
        on, off, values = form.changes()
        count = preferences.bulk_update(
            form.users.data, channels_on=on, channels_off=off, values=values, by=current_user
        )
        db.session.commit()
        flash(f"Preferences changed for {count} users.", "success")
        return redirect(url_for("admin.preference_bulk"))
    customers = db.session.scalars(db.select(Customer).order_by(Customer.name)).all()
    return render_template(
        "admin/preferences/bulk.html", form=form, customers=customers, customer_id=customer_id, role=role
    ), 400 if form.errors else 200
