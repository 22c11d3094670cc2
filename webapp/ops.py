"""Health, readiness and metrics for load balancers and Prometheus; the calendar feeds calendar apps read.

None of these has a session: each is open, or carries its own credential (the metrics token, a feed's token).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from sqlalchemy import func, text
from sqlalchemy.exc import SQLAlchemyError

from webapp import metrics
from webapp.extensions import db
from webapp.models import Notification
from webapp.queue import get_queue
from webapp.security import bearer_token, constant_time_equals
from webapp.services.oncall import feeds
from webapp.services.overview import ops_status

bp = Blueprint("ops", __name__)


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on pages that name no icon (JSON, the API docs): the same SVG icon."""
    return current_app.send_static_file("favicon.svg")


@bp.get("/schedules/ical/<token>.ics")
def schedule_ical(token: str):
    """A person's shifts as iCalendar (services.oncall.feeds); the token in the address is the credential."""
    user = feeds.user_for_token(token)
    if user is None:
        abort(404, description="No calendar at this address (it may have been regenerated).")
    body = feeds.calendar(user, base_url=current_app.config["PUBLIC_BASE_URL"])
    headers = {"Cache-Control": "private, max-age=300", "Content-Disposition": 'inline; filename="on-call.ics"'}
    return Response(body, mimetype="text/calendar", headers=headers)


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


@bp.get("/metrics", endpoint="metrics")
def metrics_page():
    token = current_app.config.get("METRICS_TOKEN")
    if token and not constant_time_equals(bearer_token(), token):
        abort(401, description="Send 'Authorization: Bearer <METRICS_TOKEN>'.")
    return Response(metrics.render(_read_now), mimetype=CONTENT_TYPE_LATEST)


def _read_now():
    """What the database and the queue say at this scrape."""
    notifications = metrics.gauge(
        "opsrelay_notifications", "Notifications in the delivery log by channel and status.", ["channel", "status"]
    )
    rows = db.session.execute(
        db.select(Notification.channel, Notification.status, func.count()).group_by(
            Notification.channel, Notification.status
        )
    ).all()
    for channel, status, count in sorted(rows):
        notifications.add_metric([str(channel), str(status)], count)
    yield notifications
    queue = get_queue(current_app)
    up = metrics.gauge("opsrelay_queue_up", "1 if the job queue (Redis) answers.")
    depth = metrics.gauge("opsrelay_queue_jobs", "Jobs waiting in each queue.", ["queue"])
    oldest = metrics.gauge(
        "opsrelay_queue_oldest_job_age_seconds", "Age of the oldest job waiting in each queue (0 if none).", ["queue"]
    )
    failed = metrics.gauge("opsrelay_queue_failed_jobs", "Jobs in each queue's failed registry.", ["queue"])
    workers = metrics.gauge("opsrelay_workers", "Workers with a fresh heartbeat.")
    try:
        found = ops_status.loads(queue)
        live = ops_status.live_workers(queue)
    except (RedisError, OSError):
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    workers.add_metric([], live)
    for load in sorted(found, key=lambda load: load.name):
        depth.add_metric([load.name], load.waiting)
        age = load.oldest_job_age.total_seconds() if load.oldest_job_age else 0.0
        oldest.add_metric([load.name], age)
        failed.add_metric([load.name], load.failed)
    yield from (up, workers, depth, oldest, failed)
