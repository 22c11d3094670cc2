"""Pooled connections: one that died while idle is replaced before use; one checked in a moment ago is not pinged."""

import pytest
import sqlalchemy as sa

from webapp import pool
from webapp.extensions import db


def test_a_connection_killed_while_idle_is_replaced(app, monkeypatch):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("needs a server that can end a session")
        pid = db.session.scalar(sa.text("select pg_backend_pid()"))
        db.session.commit()  # back to the pool
        killer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
        with killer.connect() as connection:
            assert connection.scalar(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid}) is True
        killer.dispose()
        monkeypatch.setattr(pool, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle "long enough"
        assert db.session.scalar(sa.text("select pg_backend_pid()")) != pid
        db.session.commit()


def test_a_connection_just_checked_in_is_not_pinged(app, monkeypatch):
    with app.app_context():
        db.session.scalar(sa.text("select 1"))
        db.session.commit()
        pings = []
        monkeypatch.setattr(db.engine.dialect, "do_ping", lambda connection: pings.append(connection) or True)
        db.session.scalar(sa.text("select 1"))
        db.session.commit()
        assert pings == []
        monkeypatch.setattr(pool, "PING_AFTER_IDLE_SECONDS", 0.0)
        db.session.scalar(sa.text("select 1"))
        db.session.commit()
        assert len(pings) == 1
