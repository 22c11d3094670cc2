"""The dashboard: what needs attention now."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, render_template
from sqlalchemy import func
from sqlalchemy.orm import selectinload

from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Event, EventStatus, Notification, NotificationStatus, utcnow
from webapp.queue import get_queue


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
    firing = db.session.scalars(
        db.select(Event)
        .where(Event.status == EventStatus.FIRING, Event.created_at >= since)
        .order_by(Event.id.desc())
        .limit(10)
    ).all()
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
        recent=recent,
        queue_ok=queue.ping(),
        queue_embedded=queue.embedded,
        sms_simulated=current_app.extensions["opsrelay_sms"].simulated,
    )
