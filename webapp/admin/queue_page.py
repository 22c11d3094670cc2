"""The queue page (admins): each queue's depth and oldest job, the workers, and the failed jobs, each of which
can be put back on its queue (or all at once). `flask jobs requeue` re-queues what the queue lost."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from redis.exceptions import RedisError

from webapp.admin import bp
from webapp.admin.menu import MENU, MenuItem
from webapp.admin.ops_forms import ConfirmForm
from webapp.extensions import db
from webapp.models import Role
from webapp.queue import get_queue
from webapp.security import role_required
from webapp.services import audit
from webapp.services.overview import ops_status

MENU.append(MenuItem("admin.queue_page", "Queue", Role.ADMIN, "Deliveries"))


@bp.get("/queue")
@role_required(Role.ADMIN)
def queue_page():
    queue = get_queue(current_app)
    try:
        loads = ops_status.loads(queue)
        workers = ops_status.live_workers(queue)
        failed = queue.failed()
        reachable = True
    except (RedisError, OSError):
        loads, workers, failed, reachable = [], 0, [], False
    return render_template(
        "admin/queue/page.html",
        loads=loads,
        workers=workers,
        failed=failed,
        reachable=reachable,
        embedded=queue.embedded,
        describe_age=ops_status.describe_age,
    )


@bp.post("/queue/failed/<job_id>/retry")
@role_required(Role.ADMIN)
def queue_retry(job_id: str):
    return _retry(job_id[:100])


@bp.post("/queue/failed/retry-all")
@role_required(Role.ADMIN)
def queue_retry_all():
    return _retry(None)


def _retry(job_id: str | None):
    if ConfirmForm().validate_on_submit():
        try:
            retried = get_queue(current_app).retry_failed(job_id)
        except (RedisError, OSError):
            flash("The queue (Redis) cannot be reached; nothing was retried.", "danger")
            return redirect(url_for("admin.queue_page"))
        if retried:
            audit.record(
                actor=current_user,
                action="queue.retry",
                summary=f"{retried} failed job(s) put back",
                changes={"job_id": job_id},
            )
            db.session.commit()
            flash(f"{retried} failed job(s) put back on their queue.", "success")
        else:
            flash("No such failed job (it may have been retried already).", "info")
    return redirect(url_for("admin.queue_page"))
