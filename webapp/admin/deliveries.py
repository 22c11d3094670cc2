"""Delivery log: every Notification, its filters, its explanation, and a JSON status for watchers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import abort, current_app, render_template, request
from sqlalchemy.orm import joinedload

from webapp import tenancy
from webapp.admin import bp, pager
from webapp.admin.ops_forms import DeliveryFilterForm, customer_choices, user_choices
from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus
from webapp.services.delivery import delivery_log


def _day(value, *, end: bool = False) -> datetime | None:
    if value is None:
        return None
    moment = datetime.combine(value, time.min, tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


@bp.get("/deliveries")
def delivery_list():
    principal = tenancy.current()
    form = DeliveryFilterForm(request.args)
    form.customer.choices = [("", "any customer")] + customer_choices(principal)
    form.user.choices = [("", "any user")] + user_choices(principal)
    filters = delivery_log.LogFilter()
    if form.validate():
        filters = delivery_log.LogFilter(
            channel=Channel(form.channel.data) if form.channel.data else None,
            status=NotificationStatus(form.status.data) if form.status.data else None,
            customer_id=int(form.customer.data) if form.customer.data else None,
            event_type=form.event_type.data or None,
            user_id=int(form.user.data) if form.user.data else None,
            since=_day(form.since.data),
            until=_day(form.until.data, end=True),
        )
    page = delivery_log.page(
        filters,
        principal=principal,
        per_page=current_app.config["PER_PAGE"],
        **pager.bounds(),
    )
    return render_template("admin/deliveries/list.html", form=form, page=pager.links(page))


def _visible_notification(notification_id: int) -> Notification:
    notification = db.session.get(
        Notification, notification_id, options=[joinedload(Notification.event), joinedload(Notification.user)]
    )
    if notification is None:
        abort(404)
    tenancy.current().check_see(notification.customer_id, owner_id=notification.user_id)
    return notification


@bp.get("/deliveries/<int:notification_id>")
def delivery_detail(notification_id: int):
    notification = _visible_notification(notification_id)
    return render_template(
        "admin/deliveries/detail.html",
        n=notification,
        explanation=delivery_log.explain(notification),
        attempts=delivery_log.webhook_attempts(notification),
    )


@bp.get("/deliveries/<int:notification_id>/status")
def delivery_status(notification_id: int):
    """JSON for pages that watch a send as it happens (test sends, SMTP tests)."""
    notification = _visible_notification(notification_id)
    response = current_app.json.response(delivery_log.status_payload(notification))
    response.headers["Cache-Control"] = "no-store"
    return response
