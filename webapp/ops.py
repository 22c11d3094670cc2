"""Health, readiness and metrics for load balancers and Prometheus."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from sqlalchemy import func, text
from sqlalchemy.exc import SQLAlchemyError

from webapp.extensions import db
from webapp.models import Notification
from webapp.queue import get_queue
from webapp.security import bearer_token, constant_time_equals

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    checks = {"database": True, "queue": get_queue(current_app).ping()}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        checks["database"] = False
    ready = all(checks.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503


@bp.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if token and not constant_time_equals(bearer_token(), token):
        abort(401, description="Send 'Authorization: Bearer <METRICS_TOKEN>'.")
    lines = [
        "# HELP opsrelay_notifications Notifications by channel and status.",
        "# TYPE opsrelay_notifications gauge",
    ]
    rows = db.session.execute(
        db.select(Notification.channel, Notification.status, func.count()).group_by(
            Notification.channel, Notification.status
        )
    ).all()
    for channel, status, count in sorted(rows):
        lines.append(f'opsrelay_notifications{{channel="{channel}",status="{status}"}} {count}')
    queue = get_queue(current_app)
    lines += ["# HELP opsrelay_queue_jobs Jobs waiting in each queue.", "# TYPE opsrelay_queue_jobs gauge"]
    if queue.ping():
        for name, rq_queue in sorted(queue.queues.items()):
            lines.append(f'opsrelay_queue_jobs{{queue="{name}"}} {rq_queue.count}')
    lines.append(f"opsrelay_queue_up {1 if queue.ping() else 0}")
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
