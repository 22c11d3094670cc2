"""/events/<id>: one event — its fields, labels, links (generatorURL, html_url, job_url), who was notified, why not.

Visible to those who see its customer, and to anyone it notified (their own notifications only)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, render_template

from webapp import tenancy
from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Customer, Event, Notification, User
from webapp.services.delivery import delivery_log

MAX_NOTIFICATIONS = 200
LINK_KEYS = ("generatorURL", "html_url", "job_url", "url", "externalURL")


def _links(data: dict) -> list[tuple[str, str]]:
    """The event's http(s) links from its source data; anything else is not made clickable."""
    found = []
    for key in LINK_KEYS:
        value = (data or {}).get(key)
        if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc:
            found.append((key, value))
    return found


@bp.get("/events/<int:event_id>")
def event_detail(event_id: int):
    principal = tenancy.current()
    event = db.session.scalar(delivery_log.events_visible_to(principal, db.select(Event).where(Event.id == event_id)))
    if event is None:
        abort(404)
    sees_customer = principal.can_see(event.customer_id)
    query = (
        db.select(Notification, User.name)
        .outerjoin(User, User.id == Notification.user_id)
        .where(Notification.event_id == event.id)
        .order_by(Notification.id)
        .limit(MAX_NOTIFICATIONS)
    )
    notifications = list(db.session.execute(delivery_log.visible_to(principal, query)))
    customer = db.session.get(Customer, event.customer_id) if event.customer_id else None
    annotations = (event.data or {}).get("annotations")
    return render_template(
        "admin/events/detail.html",
        event=event,
        customer=customer,
        links=_links(event.data or {}),
        annotations=annotations if isinstance(annotations, dict) else {},
        notifications=notifications,
        limited=not sees_customer,
        max_notifications=MAX_NOTIFICATIONS,
    )
