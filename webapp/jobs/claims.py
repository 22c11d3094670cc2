"""The delivery job's own transactions: the durable claim before the provider call, and the outcome after it.

These commit, so they live with the job, not in a service. The claim is one conditional
`UPDATE ... RETURNING` in autocommit: other workers see it before we call the provider, and a row the
provider may have received is on disk as `sending` before the call. On PostgreSQL the same statement
returns what the send needs (the event, whether the SMS recipient opted out), so the send reads nothing
more. The outcome is, in the common case, one more autocommit UPDATE of the changed columns.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import bindparam, event, func, inspect, text, update
from sqlalchemy.orm import Session, aliased

from webapp.extensions import db
from webapp.models import Channel, Event, Notification, PhoneNumber, utcnow
from webapp.services.delivery import sending
from webapp.services.delivery.attempts import CLAIMABLE, S

_UNTOUCHED_SINCE_CLAIM = "opsrelay_untouched_since_claim"  # session.info: no statement ran since this id's claim
COLUMNS = {attr.key: attr.columns[0] for attr in inspect(Notification).column_attrs}  # attribute -> table column


def claim(notification_id: int, *, now: datetime | None = None) -> Notification | None:
    """Take the row for this worker; None if another worker has it or it is done. Commits."""
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
            claimed, claimed_event, opted_out = row
            loaded = [claimed] if claimed_event is None else [claimed, claimed_event]
            sending.remember_context(claimed, claimed_event, opted_out=opted_out)
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


def finish(notification: Notification) -> None:
    """Commit what the send recorded.

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
