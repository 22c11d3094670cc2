"""RQ entry points: ids in, services do the work, safe to run twice. PERIODIC_JOBS run on a timer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from webapp.extensions import db
from webapp.services.delivery import attempts
from webapp.services.routing import digest
from webapp.services.tickets import sla

log = logging.getLogger(__name__)


def deliver(notification_id: int) -> str:
    notification = attempts.claim(notification_id)
    if notification is None:
        return "skipped: already taken or done"
    retry_at = attempts.send(notification)
    outcome = str(notification.status)
    attempts.finish(notification)
    if retry_at is not None:
        attempts.schedule_retry(notification_id, retry_at)
        return f"retry at {retry_at.isoformat()}"
    return outcome


def recover_notifications() -> dict[str, int]:
    return attempts.recover()


def release_held_notifications() -> int:
    """Deferred rows that are due (quiet hours over, aggregation window closed, hour rolled over): sent as
    themselves or as one digest per user and channel. Safe to run twice at once: the claim is one UPDATE."""
    pending = digest.release()
    db.session.commit()
    attempts.enqueue(pending)
    return len(pending)


def check_sla() -> dict:
    """The SLA sweep: one transaction marks and routes, then the notifications go to the queue."""
    result = sla.check_sla()
    db.session.commit()
    attempts.enqueue(result.notifications)
    log.info("sla sweep: %s", result.summary())
    return {
        "summary": result.summary(),
        "warned": [f"OPS-{i}" for i in result.warned],
        "breached": [f"OPS-{i}" for i in result.breached],
        "escalated": result.escalated,
    }


@dataclass(frozen=True)
class Periodic:
    name: str
    func: Callable
    every_seconds: int


PERIODIC_JOBS = [
    Periodic("recover-notifications", recover_notifications, 30),
    Periodic("release-held-notifications", release_held_notifications, 15),
    Periodic("check-sla", check_sla, 60),
]
