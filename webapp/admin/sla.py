"""SLA policies per customer and priority, the customer's business hours and holidays; the SLA report.

Everyone signed in reads (their own customers; admins all); only admins change. The views parse the forms and
call webapp.services.tickets.sla_policies, which decides who may change what, validates, recomputes the
deadlines of the customer's unresolved tickets (each with a timeline line giving the reason) and audits.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.forms import ConfirmForm
from webapp.admin.sla_forms import CalendarForm, HolidayForm, PolicyForm
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import Customer, Priority, SlaPolicy
from webapp.services.tickets import sla_policies, sla_report
from webapp.services.tickets.sla_policies import CALENDAR, DAY_NAMES, POLICY


def _priority_or_404(value: str) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        abort(404, description="No such priority.")


@bp.get("/sla")
def sla_list():
    principal = tenancy.current()
    customers = principal.visible_customers()
    policies = {
        (p.customer_id, str(p.priority)): p
        for p in db.session.scalars(db.select(SlaPolicy).where(SlaPolicy.customer_id.in_([c.id for c in customers])))
    }
    return render_template("admin/sla/list.html", customers=customers, policies=policies, priorities=list(Priority))


@bp.get("/sla/customers/<int:customer_id>")
def sla_customer(customer_id: int):
    return _render_customer(sla_policies.customer_for(tenancy.current(), customer_id))


def _render_customer(customer: Customer, *, calendar_form=None, holiday_form=None, status: int = 200):
    if calendar_form is None:
        calendar_form = CalendarForm(formdata=None, data=CALENDAR.form_data(sla_policies.calendar_values(customer)))
    policies = {str(p.priority): p for p in customer.sla_policies}
    page = render_template(
        "admin/sla/customer.html",
        customer=customer,
        policies=policies,
        priorities=list(Priority),
        calendar=customer.business_calendar,
        day_names=DAY_NAMES,
        calendar_form=calendar_form,
        holiday_form=holiday_form or HolidayForm(formdata=None),
        confirm=ConfirmForm(),
        can_edit=sla_policies.may_change(tenancy.current()),
    )
    return page, status


@bp.route("/sla/customers/<int:customer_id>/policies/<priority>", methods=["GET", "POST"])
def sla_policy_edit(customer_id: int, priority: str):
    principal = tenancy.current()
    customer = sla_policies.customer_for(principal, customer_id)
    level = _priority_or_404(priority)
    sla_policies.check_change(principal, customer)
    form = PolicyForm(data=POLICY.form_data(sla_policies.policy_values(customer, level)))
    if form.validate_on_submit():
        try:
            _, moved = sla_policies.save_policy(principal, customer, level, form.payload())
        except InvalidPayload as exc:
            form.show(exc)
        else:
            db.session.commit()
            flash(f"Policy for {level} priority saved; {moved} open ticket deadline(s) recomputed.", "success")
            return redirect(url_for("admin.sla_customer", customer_id=customer.id))
    policy = next((p for p in customer.sla_policies if p.priority == level), None)
    page = render_template("admin/sla/policy.html", form=form, customer=customer, priority=level, policy=policy)
    return page, 422 if request.method == "POST" else 200


@bp.post("/sla/customers/<int:customer_id>/policies/<priority>/delete")
def sla_policy_delete(customer_id: int, priority: str):
    principal = tenancy.current()
    customer = sla_policies.customer_for(principal, customer_id)
    level = _priority_or_404(priority)
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired: reload the page.")
    sla_policies.delete_policy(principal, customer, level)
    db.session.commit()
    flash(f"Policy for {level} priority removed: its tickets have no deadline now.", "success")
    return redirect(url_for("admin.sla_customer", customer_id=customer.id))


@bp.post("/sla/customers/<int:customer_id>/calendar")
def sla_calendar_save(customer_id: int):
    principal = tenancy.current()
    customer = sla_policies.customer_for(principal, customer_id)
    form = CalendarForm()
    if form.validate_on_submit():
        try:
            moved = sla_policies.save_calendar(principal, customer, form.payload())
        except InvalidPayload as exc:
            form.show(exc)
        else:
            db.session.commit()
            flash(f"Business hours saved; {moved} open ticket deadline(s) recomputed.", "success")
            return redirect(url_for("admin.sla_customer", customer_id=customer.id))
    return _render_customer(customer, calendar_form=form, status=422)


@bp.post("/sla/customers/<int:customer_id>/holidays")
def sla_holiday_add(customer_id: int):
    principal = tenancy.current()
    customer = sla_policies.customer_for(principal, customer_id)
    form = HolidayForm()
    if form.validate_on_submit():
        try:
            holiday, moved = sla_policies.add_holiday(principal, customer, form.payload())
        except InvalidPayload as exc:
            form.show(exc)
        else:
            db.session.commit()
            flash(f"Holiday {holiday.day} added; {moved} open ticket deadline(s) recomputed.", "success")
            return redirect(url_for("admin.sla_customer", customer_id=customer.id))
    return _render_customer(customer, holiday_form=form, status=422)


@bp.post("/sla/customers/<int:customer_id>/holidays/<int:holiday_id>/delete")
def sla_holiday_delete(customer_id: int, holiday_id: int):
    principal = tenancy.current()
    customer = sla_policies.customer_for(principal, customer_id)
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired: reload the page.")
    sla_policies.remove_holiday(principal, customer, holiday_id)
    db.session.commit()
    flash("Holiday removed.", "success")
    return redirect(url_for("admin.sla_customer", customer_id=customer.id))


# --- the report ------------------------------------------------------------------------------


def _report_rows():
    try:
        start, end = sla_report.period(request.args.get("from"), request.args.get("to"))
        error = None
    except ValueError as exc:
        start, end = sla_report.period(None, None)
        error = f"'{exc.args[0]}': {exc.args[1]}; showing the last {sla_report.DEFAULT_DAYS} days."
    return start, end, sla_report.compliance(start=start, end=end, principal=tenancy.current()), error


@bp.get("/reports/sla")
def report_sla():
    start, end, rows, error = _report_rows()
    return render_template("admin/reports/sla.html", rows=rows, start=start, end=end, error=error)


@bp.get("/reports/sla.csv")
def report_sla_csv():
    start, end, rows, _ = _report_rows()
    name = f"sla-{start.date().isoformat()}-{end.date().isoformat()}.csv"
    return Response(
        sla_report.to_csv(rows), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
