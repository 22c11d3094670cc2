"""Customers: list, create, edit, members."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.forms import ConfirmForm, CustomerForm, MemberForm
from webapp.admin.pager import keyset_page
from webapp.extensions import db
from webapp.models import Customer, Role, User, user_customer
from webapp.pricing import amount
from webapp.security import role_required
from webapp.services.people import customers
from webapp.services.people.customers import CustomerError


def _customer_or_404(customer_id: int, *, change: bool = False) -> Customer:
    customer = db.get_or_404(Customer, customer_id)
    principal = tenancy.current()
    if change:
        principal.check_change(customer.id)
    else:
        principal.check_see(customer.id)
    return customer


@bp.get("/customers")
def customer_list():
    query = tenancy.current().scoped(db.select(Customer), Customer.id)
    page = keyset_page(query, Customer.id, per_page=current_app.config["PER_PAGE"], descending=False)
    ids = [c.id for c in page.items]
    members = dict(
        db.session.execute(
            db.select(user_customer.c.customer_id, func.count())
            .where(user_customer.c.customer_id.in_(ids))
            .group_by(user_customer.c.customer_id)
        ).all()
    )
    return render_template("admin/customers/list.html", page=page, members=members)


@bp.route("/customers/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def customer_create():
    form = CustomerForm()
    if form.validate_on_submit():
        try:
            customer = customers.create(
                name=form.name.data,
                timezone=form.timezone.data,
                sms_budget_micros=form.sms_budget.micros,
                by=current_user,
            )
        except CustomerError as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"Customer {customer.name} created.", "success")
            return redirect(url_for("admin.customer_detail", customer_id=customer.id))
    return render_template("admin/customers/form.html", form=form, customer=None), 400 if form.errors else 200


@bp.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
@role_required(Role.OPERATOR)
def customer_edit(customer_id: int):
    customer = _customer_or_404(customer_id, change=True)
    form = CustomerForm(obj=customer)
    if not form.is_submitted():
        form.sms_budget.data = amount(customer.sms_budget_micros)
    if form.validate_on_submit():
        try:
            changed = customers.update(
                customer,
                name=form.name.data,
                timezone=form.timezone.data,
                is_active=form.is_active.data,
                # a form without the field (an operator's) keeps the budget; the service refuses an operator's change
                sms_budget_micros=(
                    form.sms_budget.micros if "sms_budget" in request.form else customer.sms_budget_micros
                ),
                by=current_user,
            )
        except CustomerError as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            db.session.commit()
            flash("Customer saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("admin.customer_detail", customer_id=customer.id))
    return render_template("admin/customers/form.html", form=form, customer=customer), 400 if form.errors else 200


@bp.get("/customers/<int:customer_id>")
def customer_detail(customer_id: int):
    customer = _customer_or_404(customer_id)
    people = db.session.scalars(
        db.select(User)
        .join(user_customer, user_customer.c.user_id == User.id)
        .where(user_customer.c.customer_id == customer.id)
        .order_by(User.name)
    ).all()
    return render_template(
        "admin/customers/members.html", customer=customer, people=people, form=MemberForm(), confirm=ConfirmForm()
    )


@bp.post("/customers/<int:customer_id>/members")
@role_required(Role.ADMIN)
def customer_member_add(customer_id: int):
    customer = _customer_or_404(customer_id, change=True)
    form = MemberForm()
    if form.validate_on_submit():
        user = db.session.scalar(db.select(User).where(User.email == form.email.data))
        if user is None:
            form.email.errors.append(f"No user has the address {form.email.data}; create the user first.")
        else:
            added = customers.add_member(customer, user, by=current_user)
            db.session.commit()
            flash(f"{user.name} added." if added else f"{user.name} is already a member.", "success")
            return redirect(url_for("admin.customer_detail", customer_id=customer.id))
    people = customer.users
    return render_template(
        "admin/customers/members.html", customer=customer, people=people, form=form, confirm=ConfirmForm()
    ), 400


@bp.post("/customers/<int:customer_id>/members/<int:user_id>/remove")
@role_required(Role.ADMIN)
def customer_member_remove(customer_id: int, user_id: int):
    customer = _customer_or_404(customer_id, change=True)
    user = db.get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if customers.remove_member(customer, user, by=current_user):
        db.session.commit()
        flash(f"{user.name} removed from {customer.name}.", "success")
    return redirect(url_for("admin.customer_detail", customer_id=customer.id))
