"""Delivering Notification rows: the outbox hand-off, the atomic claim, send, retry or fail."""

from __future__ import annotations

import functools
import logging
import random
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import bindparam, event, func, inspect, text, update
from sqlalchemy.orm import Session, aliased

from webapp.channels.base import PermanentError, TransientError
from webapp.extensions import db
from webapp.models import Channel, Event, Notification, NotificationStatus, PhoneNumber, utcnow
from webapp.queue import get_queue
from webapp.services.delivery import sending
from webapp.services.routing import digest

log = logging.getLogger(__name__)

S = NotificationStatus
DELIVER_JOB = "webapp.jobs.deliver"  # by name: the job module imports this one
CLAIMABLE = (S.PENDING, S.QUEUED)
BACKOFF_CAP_SECONDS = 15 * 60
PENDING_GRACE = timedelta(seconds=30)  # an outbox row this old was never handed to the queue
LOST_JOB_GRACE = timedelta(minutes=2)  # a queued row this far past its time lost its job
SENDING_TIMEOUT = timedelta(minutes=10)  # a worker holding a row this long has died
_UNTOUCHED_SINCE_CLAIM = "opsrelay_untouched_since_claim"  # session.info: no statement ran since this id's claim
COLUMNS = {attr.key: attr.columns[0] for attr in inspect(Notification).column_attrs}  # attribute -> table column
POSSIBLY_DUPLICATED = (
    "possibly duplicated: a worker stopped while sending, so the first attempt may have reached the recipient"
)


def enqueue(notification_ids: list[int], *, now: datetime | None = None, mark_queued: bool = True) -> int:
    """Hand committed pending rows to the queue in one round trip. Returns how many were handed over.

    With `mark_queued` (single test sends, whose status page shows "queued") the rows are then marked
    queued in a second transaction. Without it (the webhooks' hot path) they stay `pending` until a worker
    claims them (the claim takes pending and queued rows alike): no second transaction per alert. Either
    way, if the queue cannot be reached nothing is lost: the rows stay pending and the recovery sweep
    re-queues pending rows older than PENDING_GRACE. The caller has committed the rows.
    """
    if mark_queued:
        return _hand_to_queue(notification_ids, from_statuses=(S.PENDING,), now=now or utcnow())
    return len(notification_ids) if _push(notification_ids) else 0


def _push(ids: list[int]) -> bool:
    """One deliver job per id, in one Redis round trip; False (logged) if the queue is down."""
    if not ids:
        return False
    try:
        get_queue(current_app).enqueue_many(DELIVER_JOB, [(notification_id,) for notification_id in ids])
    except RedisError as exc:
        log.warning("queue unreachable (%s): %d notifications wait in the outbox", type(exc).__name__, len(ids))
        return False
    return True


def _hand_to_queue(ids: list[int], *, from_statuses: tuple, now: datetime) -> int:
    """The sweep's hand-over: push the jobs, then mark the rows queued, so a row the sweep re-queued waits
    LOST_JOB_GRACE before the next sweep pushes it again (its job may sit behind a backlog)."""
    if not _push(ids):
        return 0
    db.session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.status.in_(from_statuses))
        .values(status=S.QUEUED, queued_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return len(ids)


def claim(notification_id: int, *, now: datetime | None = None) -> Notification | None:
    """Take the row for this worker (conditional UPDATE ... RETURNING); None if another worker has it or it is done.

    One durable statement in autocommit: other workers see the claim before we call the provider, and
    a row the provider may have received is on disk as `sending` before the call. On PostgreSQL the
    same statement returns what the send needs (the event, whether the SMS recipient opted out), so
    the send reads nothing more."""
    now = now or utcnow()
    alone = not db.session().in_transaction()
    if alone:
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    plain, with_context = _claim_statements()
    params = {"claim_id": notification_id, "claim_now": now}
    loaded: list = []
    if db.session.get_bind().dialect.name == "postgresql":
        row = db.session.execute(with_context, params).one_or_none()
        if row is not None:
            claimed, event, opted_out = row
            loaded = [claimed] if event is None else [claimed, event]
            sending.remember_context(claimed, event, opted_out=opted_out)
    else:  # SQLite: no UPDATE in a WITH; the send reads the event itself
        claimed = db.session.scalars(plain, params).one_or_none()
        loaded = [claimed] if claimed is not None else []
    for instance in loaded:
        db.session.expunge(instance)  # keep its loaded state through the commit: no second read
    db.session.commit()  # ends the autocommit "transaction" (or commits the caller's)
    for instance in loaded:
        db.session.add(instance)
    if loaded and alone:
        db.session().info[_UNTOUCHED_SINCE_CLAIM] = loaded[0].id
    return loaded[0] if loaded else None


@event.listens_for(Session, "after_begin")
def _statements_ran(session: Session, transaction, connection) -> None:
    """A transaction took a connection: the outcome can no longer be written alone in autocommit."""
    session.info.pop(_UNTOUCHED_SINCE_CLAIM, None)


@functools.cache
def _claim_statements():
    """The claim, built once (parameters claim_id, claim_now): UPDATE ... RETURNING the row, and on
    PostgreSQL WITH claimed AS (that UPDATE) SELECT the row, its event, whether the recipient opted out."""
    notification_id = bindparam("claim_id", type_=Notification.__table__.c.id.type)
    now = bindparam("claim_now", type_=Notification.__table__.c.claimed_at.type)
    statement = (
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status.in_(CLAIMABLE),
            (Notification.next_attempt_at.is_(None)) | (Notification.next_attempt_at <= now),
        )
        .values(status=S.SENDING, claimed_at=now, attempts=Notification.attempts + 1, updated_at=now)
    )
    plain = statement.returning(Notification).execution_options(populate_existing=True)
    claimed_rows = statement.returning(*Notification.__table__.c).cte("claimed")
    claimed = aliased(Notification, claimed_rows)
    opted_out = (
        db.select(PhoneNumber.id)
        .where(PhoneNumber.number == claimed.recipient, PhoneNumber.opted_out.is_(True))
        .exists()
    )
    with_context = (
        db.select(claimed, Event, (claimed.channel == Channel.SMS) & opted_out)
        .outerjoin(Event, Event.id == claimed.event_id)
        .execution_options(populate_existing=True)
    )
    return plain, with_context


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
    log.info("notification %s sent via %s as %s", notification.id, notification.channel, result.provider_id)
    return None


def finish(notification: Notification) -> None:
    """Commit what send() recorded.

    On PostgreSQL the commit need not wait for the disk: if the database crashed before writing it, the
    durable claim leaves the row in `sending`, and the recovery sweep re-sends it marked "possibly
    duplicated" -- exactly as when a worker dies mid-send. One fsync per delivery (the claim's). When
    the send touched nothing but this row (the common case), the outcome is one autocommit UPDATE."""
    session = db.session()
    if session.get_bind().dialect.name != "postgresql":
        session.commit()
        return
    changes = _only_row_changes(notification)
    if changes is None:  # other rows too (opt-out, webhook attempt...): one transaction
        session.execute(text("SET LOCAL synchronous_commit = off"))
        session.commit()
        return
    session.expunge(notification)  # written below: nothing left for the session to flush
    connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    connection.execute(_outcome_statement().values(changes), {"outcome_id": notification.id})  # Core: no ORM pass
    session.commit()


@functools.cache
def _outcome_statement():
    """UPDATE notification ... WHERE id = :outcome_id, committing without waiting for the disk (the
    setting lasts for this statement's own transaction; the subquery runs once)."""
    async_commit = db.select(func.set_config("synchronous_commit", "off", True)).scalar_subquery()
    table = Notification.__table__
    return update(table).where(table.c.id == bindparam("outcome_id", type_=table.c.id.type), async_commit.is_not(None))


def _only_row_changes(notification: Notification) -> dict | None:
    """The changed columns of `notification`, if the session ran no statement since the claim and holds
    no other change."""
    session = db.session()
    if session.info.get(_UNTOUCHED_SINCE_CLAIM) != notification.id or session.new or session.deleted:
        return None
    if set(session.dirty) - {notification}:
        return None
    state = inspect(notification)
    changes = {}
    for attr in state.attrs:
        if attr.history.has_changes():
            if attr.key not in COLUMNS:
                return None
            changes[COLUMNS[attr.key]] = attr.value
    changes.setdefault(COLUMNS["updated_at"], utcnow())
    return changes


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
    log.info("notification %s: transient error %s, retry in %.1fs", notification.id, exc.code, delay)
    return notification.next_attempt_at


def _fail(notification: Notification, message: str, *, code: str | None, now: datetime) -> None:
    notification.status = S.FAILED
    notification.error_code = code
    notification.error_message = message[:1000]
    notification.failed_at = now
    notification.next_attempt_at = None
    log.info("notification %s failed: %s", notification.id, code)


def retry_job_time(at: datetime) -> datetime:
    """`at` rounded up to a whole second: RQ's scheduler keeps whole seconds and would otherwise run the
    job up to a second before the row's next_attempt_at, when the claim must refuse it."""
    return at if at.microsecond == 0 else at.replace(microsecond=0) + timedelta(seconds=1)


def schedule_retry(notification_id: int, at: datetime) -> None:
    """Put the retry on the queue for `at`; if that fails the recovery sweep finds the row."""
    try:
        get_queue(current_app).enqueue_at(retry_job_time(at), DELIVER_JOB, notification_id)
    except RedisError as exc:
        log.warning("could not schedule retry of %s (%s); the sweep will", notification_id, type(exc).__name__)


def recover(*, now: datetime | None = None) -> dict[str, int]:
    """Re-queue rows the queue lost (never enqueued, retry job lost, worker died mid-send) and deferred
    rows that are now due (quiet hours over), released by digest.release: as themselves, or several of
    one user and channel as one digest."""
    now = now or utcnow()
    recovered = list(
        db.session.scalars(
            update(Notification)
            .where(Notification.status == S.SENDING, Notification.claimed_at < now - SENDING_TIMEOUT)
            .values(
                status=S.QUEUED,
                next_attempt_at=None,
                reason=POSSIBLY_DUPLICATED,
                updated_at=now,
            )
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        )
    )
    released = digest.release(now=now)  # deferred -> pending (or into a digest); one atomic claim
    db.session.commit()
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
    requeued = _hand_to_queue(sorted(set(recovered) | set(lost) | set(released)), from_statuses=CLAIMABLE, now=now)
    return {"requeued": requeued, "recovered_from_sending": len(recovered)}
