"""The delivery job's own transactions: the durable claim before the provider call, and the outcome after it.

These commit, so they live with the job, not in a service. The claim is one conditional
`UPDATE ... RETURNING` in autocommit: other workers see it before we call the provider, and a row the
provider may have received is on disk as `sending` before the call. On PostgreSQL the same statement
returns what the send needs (the event and its incident, whether the SMS recipient opted out), so the send
reads nothing more. The outcome is, in the common case, one more autocommit UPDATE of the changed columns.

The claim is a lease (DELIVERY_LEASE_SECONDS): while the provider call runs, the process's lease keeper
renews it on its own connection; a worker that is gone stops renewing, and the recovery sweep re-sends
the row seconds later, marked. A worker that lost its database connection after the provider answered
writes the outcome again on a fresh connection (for OUTCOME_WRITE_RETRY_SECONDS) before giving up, so
the provider id is kept and the row is not re-sent.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, event, func, inspect, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased

from webapp import outbox
from webapp.errors import database_unreachable
from webapp.extensions import db
from webapp.models import Event, Incident, Notification, PhoneNumber, utcnow
from webapp.queue import DELIVER_JOB
from webapp.services.delivery import sending
from webapp.services.delivery.attempts import CLAIMABLE, S, retry_job_time

log = logging.getLogger(__name__)

_UNTOUCHED_SINCE_CLAIM = "opsrelay_untouched_since_claim"  # session.info: no statement ran since this id's claim
COLUMNS = {attr.key: attr.columns[0] for attr in inspect(Notification).column_attrs}  # attribute -> table column


UNREACHABLE_RETRY_SECONDS = 5  # a claim that met no database: the job runs again this much later


class DatabaseUnreachable(Exception):
    """The claim could not reach the database (a restart): nothing was written."""


def claim_when_reachable(notification_ids: list[int], *, attempts: int = 3) -> list[Notification]:
    """claim_many(), retried on a fresh connection while the database restarts; DatabaseUnreachable after
    `attempts` tries (the job then schedules itself again: the rows are not left to the slow sweep)."""
    pause = 0.5
    for attempt in range(attempts):
        try:
            return claim_many(notification_ids)
        except DBAPIError as exc:
            if not database_unreachable(exc):
                raise
            with contextlib.suppress(DBAPIError):
                db.session.rollback()
            db.session.remove()
            if attempt + 1 == attempts:
                raise DatabaseUnreachable(str(exc.orig)) from exc
            time.sleep(pause)
            pause *= 2
    return []


def claim(notification_id: int, *, now: datetime | None = None) -> Notification | None:
    """Take the row for this worker; None if another worker has it or it is done. Commits."""
    claimed = claim_many([notification_id], now=now)
    return claimed[0] if claimed else None


def claim_many(notification_ids: list[int], *, now: datetime | None = None) -> list[Notification]:
    """Take those of these rows that are free for this worker, in one conditional UPDATE ... RETURNING;
    rows another worker holds, or that are done, are left out. Commits."""
    now = now or utcnow()
    alone = not db.session().in_transaction()
    if alone:
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    plain, with_context = _claim_statements()
    lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    params = {
        "claim_ids": sorted(set(notification_ids)),
        "claim_now": now,
        "claim_by": worker_name(),
        "claim_until": now + lease,
    }
    claimed: list[Notification] = []
    loaded: set = set()
    if db.session.get_bind().dialect.name == "postgresql":
        for notification, claimed_event, incident, opted_out in db.session.execute(with_context, params):
            claimed.append(notification)
            loaded.update(x for x in (notification, claimed_event, incident) if x is not None)
            sending.remember_context(notification, sending.Context(claimed_event, incident, bool(opted_out)))
    else:  # SQLite: no UPDATE in a WITH; the send reads the event itself
        claimed = list(db.session.scalars(plain, params))
        loaded.update(claimed)
    for instance in loaded:
        db.session.expunge(instance)  # keep its loaded state through the commit: no second read
    db.session.commit()  # ends the autocommit "transaction" (or commits the caller's)
    for instance in loaded:
        db.session.add(instance)
    if len(claimed) == 1 and alone:
        db.session().info[_UNTOUCHED_SINCE_CLAIM] = claimed[0].id
    return sorted(claimed, key=lambda notification: notification.id)


def adopt(notification: Notification) -> None:
    """Take a row another thread claimed into this thread's session (the send pool), as if claimed here:
    its outcome may then be written alone, as one autocommit UPDATE."""
    session = db.session()
    fresh = not session.in_transaction()  # asked before adding the row: add() begins the session's transaction
    sending.adopt(notification)
    if fresh:  # (no connection yet: a statement would take one, and _statements_ran clears this)
        session.info[_UNTOUCHED_SINCE_CLAIM] = notification.id


def hand_over(notifications: list[Notification]) -> None:
    """Detach claimed rows (and the events their claim read) from this thread's session, for adopt()."""
    session = db.session()
    for notification in notifications:
        for instance in (notification, *sending.claimed_rows(notification)):
            if instance is not None and instance in session:
                session.expunge(instance)


@event.listens_for(Session, "after_begin")
def _statements_ran(session: Session, transaction, connection) -> None:
    """A transaction took a connection: the outcome can no longer be written alone in autocommit."""
    session.info.pop(_UNTOUCHED_SINCE_CLAIM, None)


@functools.cache
def _claim_statements():
    """The claim, built once (parameters claim_ids, claim_now...): UPDATE ... RETURNING the rows, and on
    PostgreSQL WITH claimed AS (that UPDATE) SELECT each row, its event and incident, whether the recipient
    opted out."""
    notification_ids = bindparam("claim_ids", expanding=True, type_=Notification.__table__.c.id.type)
    now = bindparam("claim_now", type_=Notification.__table__.c.claimed_at.type)
    by = bindparam("claim_by", type_=Notification.__table__.c.claimed_by.type)
    until = bindparam("claim_until", type_=Notification.__table__.c.lease_expires_at.type)
    statement = (
        update(Notification)
        .where(
            Notification.id.in_(notification_ids),
            Notification.status.in_(CLAIMABLE),
            (Notification.next_attempt_at.is_(None)) | (Notification.next_attempt_at <= now),
        )
        .values(
            status=S.SENDING,
            claimed_at=now,
            claimed_by=by,
            lease_expires_at=until,
            attempts=Notification.attempts + 1,
            updated_at=now,
        )
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
        db.select(claimed, Event, Incident, claimed.channel.in_(sending.PHONE_CHANNELS) & opted_out)
        .outerjoin(Event, Event.id == claimed.event_id)
        .outerjoin(Incident, Incident.id == Event.incident_id)
        .execution_options(populate_existing=True)
    )
    return plain, with_context


def worker_name() -> str:
    """Who holds a claim, as the delivery log names it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


class LeaseKeeper:
    """One thread per process renews the leases of the rows this process is sending, on its own
    connection, every third of the lease. Holding a lease costs a dict entry, not a thread."""

    def __init__(self, engine: Engine, lease_seconds: float):
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.held: dict[int, str] = {}  # notification id -> claimed_by
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.table = Notification.__table__

    def hold(self, notification_id: int, by: str) -> None:
        with self.lock:
            self.held[notification_id] = by
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="opsrelay-leases", daemon=True)
                self.thread.start()

    def drop(self, notification_id: int) -> None:
        with self.lock:
            self.held.pop(notification_id, None)

    def renew(self) -> int:
        """Extend every held lease now; how many rows were renewed. Errors are logged, not raised."""
        with self.lock:
            held = dict(self.held)
        if not held:
            return 0
        table = self.table
        until = utcnow() + timedelta(seconds=self.lease_seconds)
        try:
            with self.engine.begin() as connection:
                return connection.execute(
                    update(table)
                    .where(
                        table.c.id.in_(list(held)),
                        table.c.status == S.SENDING,
                        table.c.claimed_by.in_(set(held.values())),
                    )
                    .values(lease_expires_at=until)
                ).rowcount
        except Exception as exc:  # the database is away: the next round tries again
            log.warning("could not renew %d delivery leases: %s", len(held), type(exc).__name__)
            return 0

    def _run(self) -> None:
        while True:
            time.sleep(self.lease_seconds / 3)
            self.renew()


def lease_keeper() -> LeaseKeeper:
    app = current_app._get_current_object()
    keeper = app.extensions.get("opsrelay_leases")
    if keeper is None:
        keeper = app.extensions["opsrelay_leases"] = LeaseKeeper(db.engine, app.config["DELIVERY_LEASE_SECONDS"])
    return keeper


@contextmanager
def leased(notification: Notification):
    """Keep this row's lease alive while the block (the provider call) runs."""
    keeper = lease_keeper()
    keeper.hold(notification.id, notification.claimed_by or worker_name())
    try:
        yield
    finally:
        keeper.drop(notification.id)


def finish(notification: Notification) -> None:
    """Commit what the send recorded; if the database connection is lost, write the row's outcome again
    on a fresh connection until it lands or OUTCOME_WRITE_RETRY_SECONDS pass."""
    changes, only_columns = _row_changes(notification)
    retry_at = notification.next_attempt_at if notification.status == S.QUEUED else None
    try:
        _commit_outcome(notification, changes if only_columns else None)
    except DBAPIError as exc:
        if not database_unreachable(exc):
            raise
        log.warning("notification %s: outcome not written (%s); retrying", notification.id, type(exc.orig).__name__)
        db.session.rollback()
        db.session.remove()
        _write_outcome_again(notification.id, changes, retry_at)


def _row_changes(notification: Notification) -> tuple[dict, bool]:
    """The row's changed columns by name (what the outcome writes), read before the commit expires them, and
    whether they are all that changed on it (no relationship did)."""
    changes = {}
    only_columns = True
    for attr in inspect(notification).attrs:
        if attr.history.has_changes():
            if attr.key in COLUMNS:
                changes[COLUMNS[attr.key].name] = attr.value
            else:
                only_columns = False
    changes.setdefault("updated_at", utcnow())
    return changes, only_columns


def _write_outcome_again(notification_id: int, changes: dict, retry_at: datetime | None) -> bool:
    """The provider answered but the outcome did not reach the database: write the row alone, on a
    fresh connection, with a growing pause. Other rows of that transaction (a webhook attempt record)
    are not written again; the row's own outcome and provider id are."""
    table = Notification.__table__
    deadline = time.monotonic() + current_app.config["OUTCOME_WRITE_RETRY_SECONDS"]
    pause = 0.25
    while True:
        try:
            with db.engine.begin() as connection:
                connection.execute(update(table).where(table.c.id == notification_id).values(changes))
        except DBAPIError as exc:
            if time.monotonic() + pause > deadline:
                log.error(
                    "notification %s: outcome (%s, provider id %s) lost after retries (%s); its lease will "
                    "lapse and the recovery sweep re-sends it marked as possibly duplicated",
                    notification_id,
                    changes.get("status"),
                    changes.get("provider_id"),
                    type(exc.orig).__name__,
                )
                return False
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
            continue
        log.info("notification %s: outcome written on a fresh connection", notification_id)
        if retry_at is not None:
            outbox.push(DELIVER_JOB, [(notification_id,)], queue=outbox.current_lane(), at=retry_job_time(retry_at))
        return True


def _commit_outcome(notification: Notification, changes: dict | None) -> None:
    """Commit what the send recorded (`changes`: the row's changed columns, None if more than columns changed).

    On PostgreSQL the commit need not wait for the disk: if the database crashed before writing it, the
    durable claim leaves the row in `sending`, and the recovery sweep re-sends it marked "possibly
    duplicated" -- exactly as when a worker dies mid-send. One fsync per delivery (the claim's). When
    the send touched nothing but this row (the common case), the outcome is one autocommit UPDATE."""
    session = db.session()
    if session.get_bind().dialect.name != "postgresql":
        session.commit()
        return
    if changes is None or not _only_this_row(session, notification):  # other rows too (opt-out, webhook attempt...)
        session.execute(text("SET LOCAL synchronous_commit = off"))
        session.commit()
        return
    session.expunge(notification)  # written below: nothing left for the session to flush
    connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    statement = _outcome_statement(tuple(sorted(changes)))
    values = {f"outcome_{name}": value for name, value in changes.items()}
    connection.execute(statement, {"outcome_id": notification.id, **values})  # Core: no ORM pass
    session.commit()


@functools.cache
def _outcome_statement(names: tuple[str, ...]):
    """UPDATE notification SET <names> WHERE id = :outcome_id, committing without waiting for the disk (the
    setting lasts for this statement's own transaction; the subquery runs once). One statement per set of
    columns, built once: an outcome is a handful of kinds, and compiling one per row cost more than sending it."""
    async_commit = db.select(func.set_config("synchronous_commit", "off", True)).scalar_subquery()
    table = Notification.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("outcome_id", type_=table.c.id.type), async_commit.is_not(None))
        .values({name: bindparam(f"outcome_{name}", type_=table.c[name].type) for name in names})
    )


def _only_this_row(session: Session, notification: Notification) -> bool:
    """The session ran no statement since the row's claim and holds no change but the row's own."""
    if session.info.get(_UNTOUCHED_SINCE_CLAIM) != notification.id or session.new or session.deleted:
        return False
    return not (set(session.dirty) - {notification})
