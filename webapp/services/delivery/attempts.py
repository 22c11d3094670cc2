"""One delivery attempt of a claimed Notification: send it, record sent / failed / suppressed, schedule the
retry of a transient failure; and the recovery sweep that finds what the queue lost.

The claim and the commits around the provider call belong to the job (webapp.jobs.claims): this module
flushes, never commits. Retries go through the outbox, so they reach the queue when the outcome commits.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update

from webapp import metrics, outbox
from webapp.channels.base import PermanentError, TransientError
from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, utcnow
from webapp.services.delivery import sending
from webapp.services.routing import digest
from webapp.validation import country_of

log = logging.getLogger(__name__)

S = NotificationStatus
CLAIMABLE = (S.PENDING, S.QUEUED)
BACKOFF_CAP_SECONDS = 15 * 60
PENDING_GRACE = timedelta(seconds=30)  # an outbox row this old was never handed to the queue
LOST_JOB_GRACE = timedelta(minutes=2)  # a queued row this far past its time lost its job
SENDING_TIMEOUT = timedelta(minutes=10)  # a worker holding a row this long has died
POSSIBLY_DUPLICATED = (
    "possibly duplicated: a worker stopped while sending, so the first attempt may have reached the recipient"
)


def backoff_seconds(attempt: int, retry_after: float | None = None, *, base: float = 5.0) -> float:
    """Exponential backoff with jitter, never sooner than the provider's Retry-After."""
    delay = min(base * 2 ** max(attempt - 1, 0), BACKOFF_CAP_SECONDS)
    delay = delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
    return max(delay, retry_after or 0.0)


def send(notification: Notification, *, now: datetime | None = None) -> datetime | None:
    """Send a claimed notification and record the outcome. Returns when to retry, or None."""
    try:
        result = sending.send(notification)
    except sending.Suppress as exc:
        now = now or utcnow()
        notification.status = S.SUPPRESSED
        notification.reason = str(exc)[:300]
        notification.next_attempt_at = None
        metrics.notifications.labels(channel=str(notification.channel), status=S.SUPPRESSED.value).inc()
        log.info("notification %s suppressed at send time: %s", notification.id, exc)
        return None
    except TransientError as exc:
        return _transient_failure(notification, exc, now=now or utcnow())
    except PermanentError as exc:
        _fail(notification, exc.message, code=exc.code, now=now or utcnow())
        return None
    now = now or utcnow()
    notification.status = S.SENT
    notification.provider_id = result.provider_id
    notification.simulated = result.simulated
    notification.sent_at = now
    notification.error_code = None
    notification.error_message = None
    notification.next_attempt_at = None
    metrics.notifications.labels(channel=str(notification.channel), status=S.SENT.value).inc()
    metrics.handoff_latency.labels(channel=str(notification.channel)).observe(
        metrics.since(notification.created_at, now)
    )
    if notification.channel == Channel.SMS and notification.sms_segments:
        country = country_of(notification.recipient)
        metrics.sms_segments.labels(country=country).inc(notification.sms_segments)
    log.info("notification %s sent via %s as %s", notification.id, notification.channel, result.provider_id)
    return None


def _transient_failure(notification: Notification, exc: TransientError, *, now: datetime) -> datetime | None:
    limit = current_app.config["DELIVERY_MAX_ATTEMPTS"]
    if notification.attempts >= limit:
        _fail(notification, f"gave up after {notification.attempts} attempts: {exc.message}", code=exc.code, now=now)
        return None
    delay = backoff_seconds(notification.attempts, exc.retry_after, base=current_app.config["DELIVERY_BACKOFF_SECONDS"])
    notification.status = S.QUEUED
    notification.error_code = exc.code
    notification.error_message = exc.message[:1000]
    notification.next_attempt_at = now + timedelta(seconds=delay)
    outbox.deliver([notification.id], at=retry_job_time(notification.next_attempt_at))  # if lost: the sweep
    metrics.retries.labels(channel=str(notification.channel)).inc()
    log.info("notification %s: transient error %s, retry in %.1fs", notification.id, exc.code, delay)
    return notification.next_attempt_at


def _fail(notification: Notification, message: str, *, code: str | None, now: datetime) -> None:
    notification.status = S.FAILED
    notification.error_code = code
    notification.error_message = message[:1000]
    notification.failed_at = now
    notification.next_attempt_at = None
    metrics.notifications.labels(channel=str(notification.channel), status=S.FAILED.value).inc()
    log.info("notification %s failed: %s", notification.id, code)


def retry_job_time(at: datetime) -> datetime:
    """`at` rounded up to a whole second: RQ's scheduler keeps whole seconds and would otherwise run the
    job up to a second before the row's next_attempt_at, when the claim must refuse it."""
    return at if at.microsecond == 0 else at.replace(microsecond=0) + timedelta(seconds=1)


@dataclass(frozen=True)
class Recovery:
    ids: list[int]  # to hand to the queue again once committed
    from_sending: int  # of them, rows a dead worker left in `sending`


def recover(*, now: datetime | None = None) -> Recovery:
    """The rows the queue lost, to hand over again; flushes, never commits (the job does, then hands them over).

    - `sending` longer than SENDING_TIMEOUT: the worker died mid-send; back to queued, marked "possibly
      duplicated" (the provider may have received the first attempt);
    - deferred rows now due (quiet hours over, window closed, hour rolled over), released by digest.release
      (as themselves, or several of one user and channel as one digest) into the outbox;
    - `pending` rows older than PENDING_GRACE: their transaction committed but the queue was unreachable;
    - `queued` rows LOST_JOB_GRACE past their time: their job (or retry) was lost.
    """
    now = now or utcnow()
    recovered = list(
        db.session.scalars(
            update(Notification)
            .where(Notification.status == S.SENDING, Notification.claimed_at < now - SENDING_TIMEOUT)
            .values(status=S.QUEUED, next_attempt_at=None, reason=POSSIBLY_DUPLICATED, updated_at=now)
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        )
    )
    released = set(digest.release(now=now))  # deferred -> pending (or a digest), in the outbox already
    lost = list(
        db.session.scalars(
            db.select(Notification.id)
            .where(
                ((Notification.status == S.PENDING) & (Notification.created_at < now - PENDING_GRACE))
                | (
                    (Notification.status == S.QUEUED)
                    & (
                        (Notification.next_attempt_at < now - LOST_JOB_GRACE)
                        | (Notification.next_attempt_at.is_(None) & (Notification.updated_at < now - LOST_JOB_GRACE))
                    )
                )
            )
            .order_by(Notification.id)
            .limit(1000)
        )
    )
    return Recovery(ids=sorted((set(recovered) | set(lost)) - released), from_sending=len(recovered))


def mark_queued(notification_ids: list[int], *, now: datetime | None = None) -> None:
    """Rows whose jobs are on the queue now: the next sweep leaves them alone for LOST_JOB_GRACE (their job
    may sit behind a backlog)."""
    now = now or utcnow()
    db.session.execute(
        update(Notification)
        .where(Notification.id.in_(notification_ids), Notification.status.in_(CLAIMABLE))
        .values(status=S.QUEUED, queued_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
