"""SLA policies per customer and priority, the customer's business hours and holidays; the SLA report.

Everyone signed in reads (their own customers; admins all); only admins change. A change recomputes the
deadlines of the customer's unresolved tickets, each with a timeline line giving the reason.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.admin import bp
from webapp.admin.sla_forms import DAY_NAMES, CalendarForm, ConfirmForm, HolidayForm, PolicyForm
from webapp.extensions import db
from webapp.models import BusinessCalendar, Customer, Holiday, Priority, Role, SlaPolicy
from webapp.security import role_required
from webapp.services import audit
from webapp.services.tickets import sla, sla_report

POLICY_FIELDS = (
    "resolution_minutes",
    "first_response_minutes",
    "warning_minutes",
    "business_hours_only",
    "escalation_minutes",
    "escalation_interval_minutes",
    "escalation_limit",
)


def _customer_ids() -> frozenset[int] | None:
    return None if current_user.has_role(Role.ADMIN) else frozenset(c.id for c in current_user.customers)


def _customer_or_404(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    visible = _customer_ids()
    if customer is None or (visible is not None and customer.id not in visible):
        abort(404, description="No such customer.")
    return customer


def _priority_or_404(value: str) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        abort(404, description="No such priority.")


@bp.get("/sla")
def sla_list():
    query = db.select(Customer).order_by(Customer.name)
    if (visible := _customer_ids()) is not None:
        query = query.where(Customer.id.in_(visible))
    customers = db.session.scalars(query).all()
    policies = {
        (p.customer_id, str(p.priority)): p
        for p in db.session.scalars(db.select(SlaPolicy).where(SlaPolicy.customer_id.in_([c.id for c in customers])))
    }
    return render_template("admin/sla/list.html", customers=customers, policies=policies, priorities=list(Priority))


@bp.get("/sla/customers/<int:customer_id>")
def sla_customer(customer_id: int):
    customer = _customer_or_404(customer_id)
    return _render_customer(customer)


def _render_customer(customer: Customer, *, calendar_form=None, holiday_form=None, status: int = 200):
    calendar = customer.business_calendar
    if calendar_form is None:
        calendar_form = CalendarForm(
            formdata=None,
            timezone=calendar.timezone if calendar else customer.timezone,
            working_days=list(calendar.working_days) if calendar else [0, 1, 2, 3, 4],
            start=_hhmm(calendar.start_minute if calendar else 540),
            end=_hhmm(calendar.end_minute if calendar else 1020),
        )
    policies = {str(p.priority): p for p in customer.sla_policies}
    page = render_template(
        "admin/sla/customer.html",
        customer=customer,
        policies=policies,
        priorities=list(Priority),
        calendar=calendar,
        day_names=DAY_NAMES,
        calendar_form=calendar_form,
        holiday_form=holiday_form or HolidayForm(formdata=None),
        confirm=ConfirmForm(),
        can_edit=current_user.has_role(Role.ADMIN),
    )
    return page, status


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@bp.route("/sla/customers/<int:customer_id>/policies/<priority>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def sla_policy_edit(customer_id: int, priority: str):
    customer = _customer_or_404(customer_id)
    level = _priority_or_404(priority)
    policy = sla.policy_for(customer.id, level)
    form = PolicyForm(obj=policy)
    if form.validate_on_submit():
        created = policy is None
        if created:
            policy = SlaPolicy(customer_id=customer.id, priority=level)
            db.session.add(policy)
        before = {name: getattr(policy, name, None) for name in POLICY_FIELDS}
        form.populate_obj(policy)
        db.session.flush()
        after = {name: getattr(policy, name) for name in POLICY_FIELDS}
        changes = {k: [before[k], after[k]] for k in POLICY_FIELDS if before[k] != after[k]}
        moved = sla.recompute_customer(
            customer.id, level, reason=f"SLA policy for {level} priority changed by {current_user.name}"
        )
        audit.record(
            actor=current_user,
            action="sla_policy.create" if created else "sla_policy.update",
            target=policy,
            summary=f"{customer.name} {level}: {moved} ticket deadline(s) recomputed",
            changes=changes,
        )
        db.session.commit()
        flash(f"Policy for {level} priority saved; {moved} open ticket deadline(s) recomputed.", "success")
        return redirect(url_for("admin.sla_customer", customer_id=customer.id))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/sla/policy.html", form=form, customer=customer, priority=level, policy=policy), status


@bp.post("/sla/customers/<int:customer_id>/policies/<priority>/delete")
@role_required(Role.ADMIN)
def sla_policy_delete(customer_id: int, priority: str):
    customer = _customer_or_404(customer_id)
    level = _priority_or_404(priority)
    policy = sla.policy_for(customer.id, level)
    if policy is None or not ConfirmForm().validate_on_submit():
        abort(400, description="Nothing to delete, or the form expired: reload the page.")
    audit.record(actor=current_user, action="sla_policy.delete", target=policy, summary=f"{customer.name} {level}")
    db.session.delete(policy)
    db.session.flush()
    sla.recompute_customer(customer.id, level, reason=f"SLA policy for {level} priority removed by {current_user.name}")
    db.session.commit()
    flash(f"Policy for {level} priority removed: its tickets have no deadline now.", "success")
    return redirect(url_for("admin.sla_customer", customer_id=customer.id))


@bp.post("/sla/customers/<int:customer_id>/calendar")
@role_required(Role.ADMIN)
def sla_calendar_save(customer_id: int):
    customer = _customer_or_404(customer_id)
    form = CalendarForm()
    if not form.validate_on_submit():
        return _render_customer(customer, calendar_form=form, status=422)
    calendar = customer.business_calendar or BusinessCalendar(customer_id=customer.id)
    calendar.timezone = form.timezone.data
    calendar.working_days = sorted(set(form.working_days.data))
    calendar.start_minute, calendar.end_minute = form.start_minute, form.end_minute
    db.session.add(calendar)
    db.session.flush()
    moved = _recompute_business(customer, reason=f"business hours changed by {current_user.name}")
    audit.record(
        actor=current_user,
        action="business_calendar.update",
        target=calendar,
        summary=f"{customer.name}: {moved} deadline(s) recomputed",
    )
    db.session.commit()
    flash(f"Business hours saved; {moved} open ticket deadline(s) recomputed.", "success")
    return redirect(url_for("admin.sla_customer", customer_id=customer.id))


@bp.post("/sla/customers/<int:customer_id>/holidays")
@role_required(Role.ADMIN)
def sla_holiday_add(customer_id: int):
    customer = _customer_or_404(customer_id)
    form = HolidayForm()
    if not form.validate_on_submit():
        return _render_customer(customer, holiday_form=form, status=422)
    exists = db.session.scalar(
        db.select(Holiday.id).where(Holiday.customer_id == customer.id, Holiday.day == form.day.data)
    )
    if exists:
        form.day.errors = ["This day is already a holiday."]
        return _render_customer(customer, holiday_form=form, status=422)
    holiday = Holiday(customer_id=customer.id, day=form.day.data, name=form.name.data.strip())
    db.session.add(holiday)
    db.session.flush()
    moved = _recompute_business(customer, reason=f"holiday {holiday.day} ({holiday.name}) added")
    audit.record(actor=current_user, action="holiday.create", target=holiday, summary=f"{customer.name} {holiday.day}")
    db.session.commit()
    flash(f"Holiday {holiday.day} added; {moved} open ticket deadline(s) recomputed.", "success")
    return redirect(url_for("admin.sla_customer", customer_id=customer.id))


@bp.post("/sla/customers/<int:customer_id>/holidays/<int:holiday_id>/delete")
@role_required(Role.ADMIN)
def sla_holiday_delete(customer_id: int, holiday_id: int):
    customer = _customer_or_404(customer_id)
    holiday = db.session.get(Holiday, holiday_id)
    if holiday is None or holiday.customer_id != customer.id:
        abort(404, description="No such holiday.")
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired: reload the page.")
    audit.record(actor=current_user, action="holiday.delete", target=holiday, summary=f"{customer.name} {holiday.day}")
    db.session.delete(holiday)
    db.session.flush()
    _recompute_business(customer, reason=f"holiday {holiday.day} removed")
    db.session.commit()
    flash("Holiday removed.", "success")
    return redirect(url_for("admin.sla_customer", customer_id=customer.id))


def _recompute_business(customer: Customer, *, reason: str) -> int:
    levels = db.session.scalars(
        db.select(SlaPolicy.priority).where(SlaPolicy.customer_id == customer.id, SlaPolicy.business_hours_only)
    ).all()
    return sum(sla.recompute_customer(customer.id, level, reason=reason) for level in levels)


# --- the report ------------------------------------------------------------------------------


def _report_rows():
    try:
        start, end = sla_report.period(request.args.get("from"), request.args.get("to"))
        error = None
    except ValueError as exc:
        start, end = sla_report.period(None, None)
        error = f"'{exc.args[0]}': {exc.args[1]}; showing the last {sla_report.DEFAULT_DAYS} days."
    return start, end, sla_report.compliance(start=start, end=end, customer_ids=_customer_ids()), error


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
