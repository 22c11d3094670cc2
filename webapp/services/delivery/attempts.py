"""One delivery attempt of a claimed Notification: send it, record sent / failed / suppressed, schedule the
retry of a transient failure; and the recovery sweep that finds what the queue lost.

The claim and the commits around the provider call belong to the job (webapp.jobs.claims): this module
flushes, never commits. Retries go through the outbox, so they reach the queue when the outcome commits.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update

from webapp import metrics, outbox
from webapp.channels.base import PermanentError, TransientError
from webapp.channels.pacing import Paced
from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, utcnow
from webapp.services import sms_spend
from webapp.services.delivery import sending
from webapp.services.routing import digest

log = logging.getLogger(__name__)

S = NotificationStatus
CLAIMABLE = (S.PENDING, S.QUEUED)
BACKOFF_CAP_SECONDS = 15 * 60
PENDING_GRACE = timedelta(seconds=30)  # an outbox row this old was never handed to the queue
LOST_JOB_GRACE = timedelta(minutes=2)  # a queued row this far past its time lost its job
SENDING_TIMEOUT = timedelta(minutes=10)  # a row claimed before leases existed (no lease_expires_at): dead by now
POSSIBLY_DUPLICATED = "possibly duplicated"  # how every re-send after a lapsed lease starts its reason


def log_attempt(
    notification: Notification,
    outcome: str,
    *,
    now: datetime,
    provider_id: str | None = None,
    note: str | None = None,
) -> None:
    """Add one entry to the row's attempt history (shown in the delivery log); every provider id is kept."""
    entry = {"attempt": notification.attempts, "at": now.isoformat(timespec="seconds"), "outcome": outcome}
    if provider_id:
        entry["provider_id"] = provider_id
    if notification.claimed_by:
        entry["by"] = notification.claimed_by
    if note:
        entry["note"] = note[:300]
    notification.attempt_log = [*(notification.attempt_log or []), entry]  # a new list: the JSON change is seen


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
        log_attempt(notification, "suppressed", now=now, note=str(exc))
        metrics.notifications.labels(channel=str(notification.channel), status=S.SUPPRESSED.value).inc()
        log.info("notification %s suppressed at send time: %s", notification.id, exc)
        return None
    except Paced as exc:
        return _paced(notification, exc, now=now or utcnow())
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
    log_attempt(notification, "sent", now=now, provider_id=result.provider_id)
    metrics.notifications.labels(channel=str(notification.channel), status=S.SENT.value).inc()
    metrics.handoff_latency.labels(channel=str(notification.channel)).observe(
        metrics.since(notification.created_at, now)
    )
    if notification.channel == Channel.SMS:
        sms_spend.price(notification)
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
    log_attempt(notification, "temporary error", now=now, note=f"{exc.code}: {exc.message}; retry in {delay:.0f} s")
    outbox.deliver([notification.id], at=retry_job_time(notification.next_attempt_at))  # if lost: the sweep
    metrics.retries.labels(channel=str(notification.channel)).inc()
    log.info("notification %s: transient error %s, retry in %.1fs", notification.id, exc.code, delay)
    return notification.next_attempt_at


def _paced(notification: Notification, exc: Paced, *, now: datetime) -> datetime:
    """The sender's rate is used up for a while: the row waits for its turn, and the attempt does not count
    (nothing reached the provider). Spread over the next moments, so the waiting rows do not all return at once."""
    notification.attempts = max(notification.attempts - 1, 0)
    notification.status = S.QUEUED
    delay = exc.retry_after * random.uniform(1.0, 1.5)  # noqa: S311 - jitter, not security
    notification.next_attempt_at = now + timedelta(seconds=delay)
    outbox.deliver([notification.id], at=retry_job_time(notification.next_attempt_at))  # if lost: the sweep
    metrics.retries.labels(channel=str(notification.channel)).inc()
    log.info("notification %s: %s; sending in %.1fs", notification.id, exc.message, delay)
    return notification.next_attempt_at


def _fail(notification: Notification, message: str, *, code: str | None, now: datetime) -> None:
    notification.status = S.FAILED
    notification.error_code = code
    notification.error_message = message[:1000]
    notification.failed_at = now
    notification.next_attempt_at = None
    log_attempt(notification, "failed", now=now, note=f"{code}: {message}" if code else message)
    metrics.notifications.labels(channel=str(notification.channel), status=S.FAILED.value).inc()
    log.info("notification %s failed: %s", notification.id, code)


def retry_job_time(at: datetime) -> datetime:
    """`at` rounded up to a whole second: RQ's scheduler keeps whole seconds and would otherwise run the
    job up to a second before the row's next_attempt_at, when the claim must refuse it."""
    return at if at.microsecond == 0 else at.replace(microsecond=0) + timedelta(seconds=1)


@dataclass(frozen=True)
class Recovery:
    ids: list[int]  # to hand to the queue again once committed
    from_sending: int  # of them, rows whose worker's lease lapsed mid-send
    later: list[tuple[int, datetime]] = field(default_factory=list)  # after an outage: retries to schedule again


def lapsed_lease_reason(notification: Notification, *, now: datetime) -> str:
    """What happened, in words, when a claim's lease lapsed without an outcome."""
    who = f"worker {notification.claimed_by}" if notification.claimed_by else "the worker"
    since = notification.lease_expires_at or notification.claimed_at
    when = since.strftime("%H:%M:%S UTC") if since else "an unknown time"
    return (
        f"{POSSIBLY_DUPLICATED}: attempt {notification.attempts} by {who} stopped renewing its claim at {when} "
        "without recording an outcome (the process ended or lost the database), so the provider may have "
        "received it; sent again"
    )[:300]


def recover(*, now: datetime | None = None, after_outage: bool = False) -> Recovery:
    """The rows the queue lost, to hand over again; flushes, never commits (the job does, then hands them over).

    - `sending` with a lapsed lease: the worker is gone (killed, or cut off from the database before it
      could write the outcome); back to queued, marked "possibly duplicated" with what happened, and
      the attempt recorded in its history;
    - deferred rows now due (quiet hours over, window closed, hour rolled over), released by digest.release
      (as themselves, or several of one user and channel as one digest) into the outbox;
    - `pending` rows older than PENDING_GRACE: their transaction committed but the queue was unreachable;
    - `queued` rows LOST_JOB_GRACE past their time: their job (or retry) was lost.
    After an outage (`after_outage`) there is no grace: every pending or due queued row is handed over,
    and queued rows waiting for a later retry are returned in `later` to be scheduled again.
    """
    now = now or utcnow()
    lapsed = (Notification.lease_expires_at < now) | (
        Notification.lease_expires_at.is_(None) & (Notification.claimed_at < now - SENDING_TIMEOUT)
    )
    stranded = db.session.scalars(
        db.select(Notification)
        .where(Notification.status == S.SENDING, lapsed)
        .order_by(Notification.id)
        .limit(1000)
        .with_for_update(skip_locked=True)
    ).all()
    for notification in stranded:
        reason = lapsed_lease_reason(notification, now=now)
        log_attempt(notification, "lease expired", now=now, note=reason)
        notification.status = S.QUEUED
        notification.next_attempt_at = None
        notification.reason = reason
        notification.updated_at = now
        log.warning("notification %s: %s", notification.id, reason)
    db.session.flush()
    recovered = [notification.id for notification in stranded]
    released = set(digest.release(now=now))  # deferred -> pending (or a digest), in the outbox already
    pending_grace = timedelta(0) if after_outage else PENDING_GRACE
    lost_grace = timedelta(0) if after_outage else LOST_JOB_GRACE
    lost = list(
        db.session.scalars(
            db.select(Notification.id)
            .where(
                ((Notification.status == S.PENDING) & (Notification.created_at <= now - pending_grace))
                | (
                    (Notification.status == S.QUEUED)
                    & (
                        (Notification.next_attempt_at <= now - lost_grace)
                        | (Notification.next_attempt_at.is_(None) & (Notification.updated_at <= now - lost_grace))
                    )
                )
            )
            .order_by(Notification.id)
            .limit(10_000 if after_outage else 1000)
        )
    )
    later = []
    if after_outage:
        later = [
            (row[0], row[1])
            for row in db.session.execute(
                db.select(Notification.id, Notification.next_attempt_at).where(
                    Notification.status == S.QUEUED, Notification.next_attempt_at > now
                )
            )
        ]
    return Recovery(ids=sorted((set(recovered) | set(lost)) - released), from_sending=len(recovered), later=later)


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
