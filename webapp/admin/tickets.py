"""Tickets: list with filters and search, detail with timeline and SLA countdown, and the changes
(create, edit, assign, acknowledge, resolve, comment) — all through services.tickets."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from webapp import tenancy
from webapp.admin import bp, pager
from webapp.admin.ops_forms import (
    CommentForm,
    ConfirmForm,
    TicketEditForm,
    TicketFilterForm,
    TicketForm,
    customer_choices,
    user_choices,
)
from webapp.extensions import db
from webapp.models import Customer, Priority, Role, Ticket, TicketStatus, User, utcnow
from webapp.services.inbound import acks
from webapp.services.tickets import ticket_queries, tickets


def _visible_ticket(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id, options=[joinedload(Ticket.customer), joinedload(Ticket.assignee)])
    if ticket is None:
        abort(404)
    tenancy.current().check_see(ticket.customer_id)
    return ticket


def _changeable_ticket(ticket_id: int) -> Ticket:
    ticket = _visible_ticket(ticket_id)
    tenancy.current().check_change(ticket.customer_id)
    return ticket


def _assignee_choices(customer_id: int | None) -> list[tuple[str, str]]:
    users = ticket_queries.assignable_users(customer_id) if customer_id else []
    return [("", "unassigned")] + [(str(u.id), u.name) for u in users]


MAX_CUSTOMERS_FOR_ASSIGNEES = 10  # before a customer is picked: everyone who could work one of these


def _assignees_of_any(customers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Before a customer is picked (several to choose from): who can work each, named with their customers.
    The choice is checked against the picked customer on submit (_assignee_choices)."""
    if len(customers) > MAX_CUSTOMERS_FOR_ASSIGNEES:
        return [("", "unassigned (pick the customer first)")]
    names: dict[int, str] = {}
    works_for: dict[int, list[str]] = {}
    for customer_id, customer_name in customers:
        for user in ticket_queries.assignable_users(int(customer_id)):
            names[user.id] = user.name
            works_for.setdefault(user.id, []).append(customer_name)
    people = sorted(names, key=lambda uid: names[uid].lower())
    return [("", "unassigned")] + [(str(uid), f"{names[uid]} ({', '.join(works_for[uid])})") for uid in people]


@bp.get("/tickets")
def ticket_list():
    principal = tenancy.current()
    form = TicketFilterForm(request.args)
    form.customer.choices = [("", "any customer")] + customer_choices(principal)
    form.assignee.choices = [("", "anyone"), ("0", "unassigned")] + user_choices(principal, staff_only=True)
    filters = ticket_queries.TicketFilter()
    if form.validate():
        filters = ticket_queries.TicketFilter(
            q=(form.q.data or "").strip(),
            status=TicketStatus(form.status.data) if form.status.data else None,
            priority=Priority(form.priority.data) if form.priority.data else None,
            customer_id=int(form.customer.data) if form.customer.data else None,
            assignee_id=int(form.assignee.data) if form.assignee.data else None,
            sla=form.sla.data or None,
        )
    now = utcnow()
    page = ticket_queries.page(
        filters,
        principal=principal,
        per_page=current_app.config["PER_PAGE"],
        **pager.bounds(),
        now=now,
    )
    return render_template(
        "admin/tickets/list.html",
        form=form,
        page=pager.links(page),
        sla_state=lambda t: ticket_queries.sla_state(t, now),
        can_change=principal.allows(Role.OPERATOR),
    )


@bp.route("/tickets/new", methods=["GET", "POST"])
def ticket_new():
    principal = tenancy.current()
    principal.require(Role.OPERATOR)
    form = TicketForm()
    form.customer.choices = customer_choices(principal)
    if len(form.customer.choices) == 1 and not form.customer.data:
        form.customer.data = form.customer.choices[0][0]
    chosen = next((value for value, _ in form.customer.choices if value == form.customer.data), None)
    # only a customer it sees; before one is picked, the people of each (an operator of two customers)
    form.assignee.choices = _assignee_choices(int(chosen)) if chosen else _assignees_of_any(form.customer.choices)
    if form.validate_on_submit():
        customer = db.session.get(Customer, int(form.customer.data))
        principal.check_change(customer.id)
        assignee = db.session.get(User, int(form.assignee.data)) if form.assignee.data else None
        ticket = tickets.create(
            customer=customer,
            title=form.title.data.strip(),
            description=form.description.data or "",
            priority=Priority(form.priority.data),
            assignee=assignee,
            actor=current_user,
            source="the admin pages",
        )
        db.session.commit()
        flash(f"Ticket {ticket.key} created.", "success")
        return redirect(url_for("admin.ticket_detail", ticket_id=ticket.id))
    return render_template(
        "admin/tickets/new.html", form=form, can_add_customer=principal.sees_all and principal.allows(Role.ADMIN)
    )


def _render_detail(ticket: Ticket, *, edit: TicketEditForm | None = None, comment_form: CommentForm | None = None):
    can_change = tenancy.current().allows(Role.OPERATOR)
    if can_change and edit is None:
        edit = TicketEditForm(
            formdata=None,
            priority=ticket.priority.value,
            status=ticket.status.value,
            assignee=str(ticket.assignee_id or ""),
        )
    if edit is not None:
        edit.assignee.choices = _assignee_choices(ticket.customer_id)
    return render_template(
        "admin/tickets/detail.html",
        ticket=ticket,
        timeline=ticket_queries.timeline(ticket),
        sla_state=ticket_queries.sla_state(ticket),
        can_change=can_change,
        edit=edit if can_change else None,
        comment_form=(comment_form or CommentForm(formdata=None)) if can_change else None,
        confirm=ConfirmForm(formdata=None),
    )


@bp.get("/tickets/<int:ticket_id>")
def ticket_detail(ticket_id: int):
    return _render_detail(_visible_ticket(ticket_id))


@bp.post("/tickets/<int:ticket_id>/edit")
def ticket_edit(ticket_id: int):
    ticket = _changeable_ticket(ticket_id)
    form = TicketEditForm()
    form.assignee.choices = _assignee_choices(ticket.customer_id)
    if not form.validate_on_submit():
        return _render_detail(ticket, edit=form), 422
    assignee = db.session.get(User, int(form.assignee.data)) if form.assignee.data else None
    changed = tickets.set_priority(ticket, Priority(form.priority.data), actor=current_user)
    changed |= tickets.assign(ticket, assignee, actor=current_user)
    changed |= acks.change_ticket_status(ticket, TicketStatus(form.status.data), actor=current_user, via="web")
    db.session.commit()
    flash("Ticket updated." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("admin.ticket_detail", ticket_id=ticket.id))


@bp.post("/tickets/<int:ticket_id>/assign-to-me")
def ticket_take(ticket_id: int):
    ticket = _changeable_ticket(ticket_id)
    if ConfirmForm().validate_on_submit() and tickets.assign(ticket, current_user, actor=current_user):
        db.session.commit()
        flash(f"{ticket.key} is assigned to you.", "success")
    return redirect(url_for("admin.ticket_detail", ticket_id=ticket.id))


@bp.post("/tickets/<int:ticket_id>/ack")
def ticket_ack(ticket_id: int):
    ticket = _changeable_ticket(ticket_id)
    if ConfirmForm().validate_on_submit():
        if acks.acknowledge_ticket(ticket, by=current_user, via="web").acknowledged:
            db.session.commit()
            flash("Ticket acknowledged.", "success")
        else:
            flash("This ticket was already acknowledged.", "info")
    return redirect(url_for("admin.ticket_detail", ticket_id=ticket.id))


@bp.post("/tickets/<int:ticket_id>/resolve")
def ticket_resolve(ticket_id: int):
    ticket = _changeable_ticket(ticket_id)
    if ConfirmForm().validate_on_submit():
        if acks.change_ticket_status(ticket, TicketStatus.RESOLVED, actor=current_user, via="web"):
            db.session.commit()
            flash(f"{ticket.key} resolved.", "success")
        else:
            flash("This ticket is already resolved.", "info")
    return redirect(url_for("admin.ticket_detail", ticket_id=ticket.id))


@bp.post("/tickets/<int:ticket_id>/comment")
def ticket_comment(ticket_id: int):
    ticket = _changeable_ticket(ticket_id)
    form = CommentForm()
    if form.validate_on_submit():
        tickets.comment(ticket, form.body.data.strip(), actor=current_user)
        db.session.commit()
        flash("Comment added.", "success")
        return redirect(url_for("admin.ticket_detail", ticket_id=ticket.id))
    return _render_detail(ticket, comment_form=form), 422
