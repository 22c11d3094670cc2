"""The dashboard: what needs attention now."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, render_template
from sqlalchemy import exists, func
from sqlalchemy.orm import aliased, selectinload

from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Event, EventStatus, Notification, NotificationStatus, utcnow
from webapp.queue import get_queue

FIRING_WINDOW = timedelta(days=7)  # older alerts without a resolution are not "now"


@bp.get("/")
def dashboard():
    since = utcnow() - timedelta(hours=24)
    counts = dict(
        db.session.execute(
            db.select(Notification.status, func.count())
            .where(Notification.created_at >= since)
            .group_by(Notification.status)
        ).all()
    )
    resolved = aliased(Event)
    still_firing = (
        db.select(Event)
        .where(
            Event.status == EventStatus.FIRING,
            Event.created_at >= utcnow() - FIRING_WINDOW,
            ~exists().where(
                resolved.source == Event.source,
                resolved.dedup_key == Event.dedup_key,
                resolved.status == EventStatus.RESOLVED,
            ),
        )
        .order_by(Event.id.desc())
    )
    firing = db.session.scalars(still_firing.limit(10)).all()
    firing_count = db.session.scalar(db.select(func.count()).select_from(still_firing.subquery()))
    recent = db.session.scalars(
        db.select(Notification)
        .options(selectinload(Notification.user), selectinload(Notification.event))
        .order_by(Notification.id.desc())
        .limit(20)
    ).all()
    queue = get_queue(current_app)
    return render_template(
        "admin/dashboard.html",
        counts={status.value: counts.get(status, 0) for status in NotificationStatus},
        firing=firing,
        firing_count=firing_count,
        recent=recent,
        queue_ok=queue.ping(),
        queue_embedded=queue.embedded,
        sms_simulated=current_app.extensions["opsrelay_sms"].simulated,
    )
