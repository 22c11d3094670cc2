"""Inbox: my web notifications, unread first in the menu badge; mark read."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.forms import ConfirmForm
from webapp.admin.pager import keyset_page
from webapp.extensions import db
from webapp.models import Channel, Notification
from webapp.security import is_safe_next
from webapp.services.overview.inbox import SHOWN, inbox_items, incidents_of, mark_read


@bp.get("/inbox")
def inbox():
    principal = tenancy.current()
    unread_only = request.args.get("unread") == "1"
    page = keyset_page(
        inbox_items(principal.own_user_id, unread_only=unread_only),
        Notification.id,
        per_page=current_app.config["PER_PAGE"],
    )
    incidents = incidents_of(page.items)
    return render_template(
        "admin/inbox/list.html",
        page=page,
        unread_only=unread_only,
        confirm=ConfirmForm(),
        incident_of=lambda n: incidents.get(n.event.incident_id) if n.event is not None else None,
        can_change=principal.can_change,
    )


@bp.app_template_global()
def link_ticket(ticket_id: int) -> Markup:
    """A link to the ticket's page once it exists, else its key as text."""
    label = f"OPS-{ticket_id}"
    if "admin.ticket_detail" in current_app.view_functions:
        return Markup('<a href="{}">{}</a>').format(url_for("admin.ticket_detail", ticket_id=ticket_id), label)
    return Markup("<span>{}</span>").format(label)


@bp.app_template_global()
def link_event(event_id: int) -> Markup:
    label = f"event #{event_id}"
    if "admin.event_detail" in current_app.view_functions:
        return Markup('<a href="{}">{}</a>').format(url_for("admin.event_detail", event_id=event_id), label)
    return Markup('<span class="text-muted">{}</span>').format(label)


@bp.post("/inbox/<int:notification_id>/read")
def inbox_read(notification_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    notification = db.get_or_404(Notification, notification_id)
    if (
        not tenancy.current().is_self(notification.user_id)
        or notification.channel != Channel.WEB
        or notification.status not in SHOWN
    ):
        abort(404)
    mark_read(current_user.id, notification_id=notification.id)
    db.session.commit()
    target = request.form.get("next")
    return redirect(target if is_safe_next(target) else url_for("admin.inbox"))


@bp.post("/inbox/read-all")
def inbox_read_all():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    count = mark_read(current_user.id)
    db.session.commit()
    flash(f"{count} marked read." if count else "Nothing unread.", "success")
    return redirect(url_for("admin.inbox"))
