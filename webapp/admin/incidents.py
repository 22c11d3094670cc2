"""Incidents: the console (/incidents: filters, keyset pages, bulk acknowledge / resolve) and one incident's
page (labels, links, the merged timeline, who was paged and why another person was not, acknowledge /
resolve / reopen, its ticket). Every change goes through services.inbound.acks (one effect from every path);
what a reader sees is services.overview.incident_queries under the tenant boundary."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from webapp import tenancy
from webapp.admin import bp, pager
from webapp.admin.incident_forms import ExplainForm, IncidentFilterForm
from webapp.admin.ops_forms import ConfirmForm, customer_choices, user_choices
from webapp.extensions import db
from webapp.inputs import is_id
from webapp.models import Customer, Incident, Notification, Role, Severity, Ticket, User, utcnow
from webapp.security import is_safe_next
from webapp.services.delivery import delivery_log
from webapp.services.events import incidents as incident_changes
from webapp.services.inbound import acks
from webapp.services.overview import incident_queries
from webapp.services.routing import explain

VIA = ("web", "console", "inbox", "dashboard")  # the pages an acknowledgement can come from
MAX_BULK = 200


def _filters(form: IncidentFilterForm, principal: tenancy.Principal) -> incident_queries.IncidentFilter:
    if not form.validate():
        return incident_queries.IncidentFilter()
    return incident_queries.IncidentFilter(
        state=form.state.data or "open",
        severity=Severity(form.severity.data) if form.severity.data else None,
        customer_id=int(form.customer.data) if form.customer.data else None,
        source=form.source.data or None,
        label=(form.label.data or "").strip() or None,
        paged_user_id=principal.own_user_id if form.mine.data else None,
        unacknowledged=bool(form.unacked.data),
        order=form.order.data or "newest",
    )


@bp.get("/incidents")
def incident_list():
    principal = tenancy.current()
    form = IncidentFilterForm(request.args)
    form.customer.choices = [("", "any customer")] + customer_choices(principal)
    form.source.choices = [("", "any source")] + [(s, s) for s in incident_queries.sources()]
    filters = _filters(form, principal)
    found = incident_queries.page(
        filters,
        principal=principal,
        per_page=current_app.config["PER_PAGE"],
        before=incident_queries.parse_bound(request.args.get("before"), filters.order),
        after=incident_queries.parse_bound(request.args.get("after"), filters.order),
    )
    page = pager.links(
        type(found)(
            found.items,
            before=incident_queries.format_bound(found.before),
            after=incident_queries.format_bound(found.after),
        )
    )
    return render_template(
        "admin/incidents/list.html",
        form=form,
        page=page,
        now=utcnow(),
        age=incident_queries.age,
        can_change=principal.allows(Role.OPERATOR),
        can_change_row=lambda incident: principal.can_change(incident.customer_id),
        confirm=ConfirmForm(formdata=None),
    )


@bp.post("/incidents/bulk")
def incident_bulk():
    principal = tenancy.current()
    principal.require(Role.OPERATOR)
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired: reload the page and try again.")
    action = request.form.get("action")
    raw = request.form.getlist("incident")
    back = _back(url_for("admin.incident_list"))
    if not raw:
        flash("Tick the incidents to change first.", "warning")
        return redirect(back)
    ids = {int(value) for value in raw if value.isdigit() and len(value) <= 19}
    if len(raw) > MAX_BULK or len(ids) != len(set(raw)) or not all(is_id(i) for i in ids):
        abort(400, description=f"Pick up to {MAX_BULK} incidents from the list.")
    chosen = list(
        db.session.scalars(
            incident_queries.visible(principal, db.select(Incident).where(Incident.id.in_(ids))).order_by(Incident.id)
        )
    )
    if len(chosen) != len(ids):
        abort(404, description="No such incident here.")
    for incident in chosen:
        principal.check_change(incident.customer_id)
    if action not in ("acknowledge", "resolve"):
        flash("Choose Acknowledge or Resolve.", "danger")
        return redirect(back)
    by = principal.user
    if action == "acknowledge":
        changed = sum(acks.acknowledge(i, by=by, via="console").acknowledged for i in chosen)
        verb = "acknowledged"
    else:
        changed = sum(acks.resolve(i, by=by, via="console") for i in chosen)
        verb = "resolved"
    db.session.commit()
    unchanged = len(chosen) - changed
    note = f" ({unchanged} already {verb} or over)" if unchanged else ""
    flash(f"{changed} incident{'s' if changed != 1 else ''} {verb}{note}.", "success" if changed else "info")
    return redirect(back)


@bp.get("/incidents/<int:incident_id>")
def incident_detail(incident_id: int):
    principal = tenancy.current()
    incident = _visible(incident_id)
    first = incident_queries.first_event(incident)
    form = ExplainForm(request.args)
    form.explain.choices = [("", "pick a person")] + user_choices(principal)
    answer, asked = None, None
    if form.explain.data and form.validate() and first is not None:
        asked = db.session.get(User, int(form.explain.data))
        if asked is not None and principal.can_see_user(asked):
            answer = explain.for_user(first, asked)
    ticket = db.session.get(Ticket, incident.ticket_id) if incident.ticket_id else None
    customer = db.session.get(Customer, incident.customer_id) if incident.customer_id else None
    data = incident.data or {}
    annotations = data.get("annotations") if isinstance(data.get("annotations"), dict) else {}
    return render_template(
        "admin/incidents/detail.html",
        incident=incident,
        row=incident_queries.rows([incident])[0],
        customer=customer,
        ticket=ticket if ticket is not None and principal.can_see(ticket.customer_id) else None,
        links=incident_queries.links(incident),
        annotations=annotations,
        timeline=incident_queries.timeline(
            incident, notifications_query=delivery_log.visible_to(principal, db.select(Notification))
        ),
        first=first,
        form=form,
        asked=asked,
        answer=answer,
        age=incident_queries.age(incident),
        can_change=principal.can_change(incident.customer_id),
        confirm=ConfirmForm(formdata=None),
    )


@bp.post("/incidents/<int:incident_id>/ack")
def incident_ack(incident_id: int):
    incident = _changeable(incident_id)
    result = acks.acknowledge(incident, by=tenancy.current().user, via=_via())
    db.session.commit()
    if result.acknowledged:
        flash(f"Incident #{incident.id} acknowledged: escalation stopped.", "success")
    else:
        flash(f"Incident #{incident.id} is already {incident.state}.", "info")
    return redirect(_back(url_for("admin.incident_detail", incident_id=incident.id)))


@bp.post("/incidents/<int:incident_id>/resolve")
def incident_resolve(incident_id: int):
    incident = _changeable(incident_id)
    done = acks.resolve(incident, by=tenancy.current().user, via=_via())
    db.session.commit()
    flash(
        f"Incident #{incident.id} resolved." if done else f"Incident #{incident.id} was already resolved.",
        "success" if done else "info",
    )
    return redirect(_back(url_for("admin.incident_detail", incident_id=incident.id)))


@bp.post("/incidents/<int:incident_id>/reopen")
def incident_reopen(incident_id: int):
    incident = _changeable(incident_id)
    done = incident_changes.reopen(incident, by=tenancy.current().user, via=_via())
    db.session.commit()
    if done:
        flash(f"Incident #{incident.id} reopened.", "success")
    elif incident.state == "triggered":
        flash(f"Incident #{incident.id} is already open.", "info")
    else:
        flash("The alert fired again since: its newer incident is the open one.", "warning")
    return redirect(_back(url_for("admin.incident_detail", incident_id=incident.id)))


def _visible(incident_id: int) -> Incident:
    incident = incident_queries.get(tenancy.current(), incident_id)
    if incident is None:
        abort(404, description="No such incident here.")
    return incident


def _changeable(incident_id: int) -> Incident:
    """The incident, for a change: 404 if the reader does not see it, 403 if its role may not change it,
    400 without the form's CSRF token."""
    incident = _visible(incident_id)
    tenancy.current().check_change(incident.customer_id)
    if not ConfirmForm().validate_on_submit():
        abort(400, description="The form expired: reload the page and try again.")
    return incident


def _via() -> str:
    via = request.form.get("via")
    return via if via in VIA else "web"


def _back(default: str) -> str:
    target = request.form.get("next")
    return target if is_safe_next(target) else default
