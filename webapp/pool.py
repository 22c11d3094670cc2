"""Pessimistic disconnect handling that costs a round trip only when it can matter.

SQLAlchemy's pool_pre_ping pings on every checkout; a queue worker checks a connection out two or
three times per job, each a moment after it was checked in. A connection that was idle longer than
PING_AFTER_IDLE_SECONDS is pinged (a dead one is replaced before use, as with pool_pre_ping); one
checked in a moment ago is handed out as it is. If the database restarted within that moment, the
statement fails like any statement mid-restart: the pool is invalidated and the job's own retry and
recovery rules apply.
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "opsrelay_idle_since"


def install(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _connected(dbapi_connection, record) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"connection failed its ping: {error}") from error
