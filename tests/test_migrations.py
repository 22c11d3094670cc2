"""The revisions build the schema the models describe, on SQLite and PostgreSQL, down and up again."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from tests.conftest import _postgres_url, base_config, ensure_postgres_database
from webapp import create_app
from webapp.extensions import db
from webapp.models import WEBHOOK_SOURCE_KINDS


@pytest.fixture
def empty_database(tmp_path):
    url = _postgres_url()
    if url is None:
        yield "sqlite:///" + str(tmp_path / "migrations.sqlite3")
        return
    url = str(sa.engine.make_url(url).set(database=sa.engine.make_url(url).database + "_migrations"))
    ensure_postgres_database(url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    yield url


@pytest.fixture
def migrated(empty_database):
    """An app context on `empty_database` after `flask db upgrade`; connections closed afterwards."""
    app = create_app(base_config(empty_database))
    with app.app_context():
        upgrade()
        yield app
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()


def schema_diff() -> list:
    with db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata)


def test_upgrade_downgrade_upgrade(migrated):
    assert schema_diff() == []  # the revisions and the models agree
    template = db.session.execute(
        sa.text("SELECT name, event_type, channel, body_text FROM message_template WHERE channel = 'sms'")
    ).one()
    assert template[:3] == ("system_alert", "alert", "sms")
    # The first seed's SMS, as the incidents revision left it: critical says so, empty label lines are skipped.
    assert "\U0001f6a8 CRITICAL ALERT" in template.body_text and "{% if instance %}" in template.body_text
    db.session.execute(
        sa.text("INSERT INTO customer (name, timezone, is_active, created_at) VALUES ('Acme', 'UTC', true, :now)"),
        {"now": "2026-11-26 10:00:00"},
    )
    db.session.commit()
    db.session.remove()

    downgrade(revision="base")
    tables = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()

    upgrade()
    assert schema_diff() == []
    counts = dict(db.session.execute(sa.text("SELECT channel, count(*) FROM message_template GROUP BY channel")).all())
    assert counts == {"sms": 1, "email": 9}  # system_alert, and the email templates of each event type
    db.session.remove()


def test_constraints_live_in_the_database(migrated):
    inspector = sa.inspect(db.engine)
    event_uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("event")}
    assert ("source", "customer_scope", "dedup_key", "status") in event_uniques  # a dedup key is per customer
    notification_uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("notification")}
    assert ("event_id", "user_id", "channel") in notification_uniques
    ticket_indexes = {i["name"] for i in inspector.get_indexes("ticket")}
    assert {"ix_ticket_sla_warn", "ix_ticket_sla_due"} <= ticket_indexes
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.text(
                'INSERT INTO "user" (email, name, password_hash, role, is_active, timezone, created_at) '
                "VALUES ('x@example.com', 'X', 'h', 'superuser', true, 'UTC', '2026-11-26 10:00:00')"
            )
        )
    db.session.rollback()


def test_foreign_keys_are_enforced_right_after_migrating(migrated):
    """`flask dev` migrates then serves on the same engine: SQLite must enforce foreign keys again."""
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.text(
                "INSERT INTO phone_number (user_id, number, label, is_primary, opted_out, created_at) "
                "VALUES (999, '+14155550100', 'x', false, false, '2026-11-26 10:00:00')"
            )
        )
    db.session.rollback()


FILTERS_REVISION = "21668592deb4"  # outgoing webhook filters use the names delivery sends


def test_endpoint_filters_move_to_the_delivery_names_and_back(empty_database):
    """On a populated database: the page's old names become the names delivery sends, and back on downgrade."""
    app = create_app(base_config(empty_database))
    endpoint = sa.table(
        "webhook_endpoint",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("url", sa.String),
        sa.column("secret_encrypted", sa.Text),
        sa.column("event_types", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    old = {
        "alerts and breaches": ["alert", "sla_breach"],
        "jobs": ["job_failed"],
        "tickets": ["ticket_created", "ticket_updated", "sla_warning", "timeline_updated"],
        "everything": [],
        "already new": ["ticket.created"],
        "unknown kept": ["party", "ticket_created"],
    }
    with app.app_context():
        upgrade(revision=f"{FILTERS_REVISION}-1")
        now = datetime(2026, 11, 26, 10, tzinfo=UTC)
        row = {"url": "https://x.example/h", "secret_encrypted": "x", "created_at": now}
        rows = [{**row, "name": name, "event_types": types} for name, types in old.items()]
        db.session.execute(endpoint.insert(), rows)
        db.session.commit()

        def filters() -> dict:
            rows = db.session.execute(sa.select(endpoint.c.name, endpoint.c.event_types)).all()
            db.session.commit()
            return dict(rows)

        upgrade(revision=FILTERS_REVISION)
        assert filters() == {
            "alerts and breaches": ["event.created", "event.resolved", "ticket.sla_breach"],
            "jobs": ["event.created", "event.resolved"],
            "tickets": ["ticket.created", "ticket.sla_warning", "ticket.updated", "timeline.updated"],
            "everything": [],
            "already new": ["ticket.created"],
            "unknown kept": ["party", "ticket.created"],
        }
        upgrade()  # the incidents revision: alerts and failed jobs are now sent as incident.*
        assert filters()["alerts and breaches"] == [
            "event.created",
            "event.resolved",
            "incident.resolved",
            "incident.triggered",
            "ticket.sla_breach",
        ]
        assert filters()["everything"] == [] and filters()["tickets"] == [
            "ticket.created",
            "ticket.sla_warning",
            "ticket.updated",
            "timeline.updated",
        ]
        assert schema_diff() == []

        downgrade(revision=f"{FILTERS_REVISION}-1")
        assert filters() == {
            "alerts and breaches": ["alert", "sla_breach"],
            "jobs": ["alert"],  # event.created / event.resolved meant any event: the old page said alert
            "tickets": ["sla_warning", "ticket_created", "ticket_updated", "timeline_updated"],
            "everything": [],
            "already new": ["ticket_created"],
            "unknown kept": ["party", "ticket_created"],
        }
        db.session.remove()
        db.engine.dispose()


def test_the_webhook_source_kinds_the_database_accepts_are_the_registry(migrated):
    """The kind_known check is derived from the registry: a new kind needs its revision, and this notices."""
    insert = sa.text(
        "INSERT INTO webhook_source (name, kind, create_tickets, is_active, created_at, updated_at) "
        "VALUES (:name, :kind, false, true, '2026-11-26 10:00:00', '2026-11-26 10:00:00')"
    )
    for kind in WEBHOOK_SOURCE_KINDS:
        db.session.execute(insert, {"name": f"a {kind.name} source", "kind": kind.name})
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(insert, {"name": "not a kind", "kind": "fax"})
    db.session.rollback()


def test_a_deleted_newest_ticket_never_gives_its_id_or_key_to_the_next(migrated):
    """On SQLite too (AUTOINCREMENT): OPS-2 deleted, the next ticket is OPS-3, and its event is not deduplicated."""
    from webapp.models import Customer, Ticket

    customer = Customer(name="Acme")
    db.session.add(customer)
    db.session.flush()
    first, second = (Ticket(customer=customer, title=title) for title in ("Disk full", "CPU hot"))
    db.session.add_all([first, second])
    db.session.commit()
    assert second.key == "OPS-2"
    db.session.delete(second)
    db.session.commit()
    third = Ticket(customer=customer, title="Memory leak")
    db.session.add(third)
    db.session.commit()
    assert third.key == "OPS-3"


INCIDENTS_REVISION = "a1c3e5f7b9d2"  # events grouped into incidents


def test_existing_events_are_grouped_into_incidents(empty_database):
    """On a populated database: one incident per alert's life, whatever startsAt precision the events had;
    acknowledgements, escalation steps and ack notices follow their alert; a second firing after the
    resolution is a second incident."""
    app = create_app(base_config(empty_database))
    with app.app_context():
        upgrade(revision=f"{INCIDENTS_REVISION}-1")
        now = datetime(2026, 11, 26, 10, tzinfo=UTC)
        db.session.execute(
            sa.text(
                'INSERT INTO "user" (id, email, name, password_hash, role, is_active, timezone, created_at) '
                "VALUES (1, 'a@x.example', 'Ann', 'x', 'admin', true, 'UTC', :now)"
            ),
            {"now": now},
        )
        insert = sa.text(
            "INSERT INTO event (id, source, event_type, dedup_key, status, severity, title, body, labels, data, "
            "created_at) VALUES (:id, :s, :k, :d, :st, 'critical', 'T', '', '{}', :data, :now)"
        )
        events = [
            (1, "alertmanager", "alert", "fp1@2026-11-26T09:59:59.123456+00:00", "firing", {"fingerprint": "fp1"}),
            (2, "alertmanager", "alert", "fp1@2026-11-26T09:59:59+00:00", "resolved", {"fingerprint": "fp1"}),
            (3, "alertmanager", "alert", "fp1@2026-11-26T11:00:00+00:00", "firing", {"fingerprint": "fp1"}),
            (4, "pagerduty", "alert", "PD1", "firing", {"incident_id": "PD1"}),
            (5, "pagerduty", "alert", "PD1:priority:ev9", "info", {"incident_id": "PD1"}),
            (6, "escalation", "alert", "event-4:level-1", "firing", {}),
            (7, "generic", "job_success", "nightly", "info", {}),
        ]
        for row_id, source, kind, key, status, data in events:
            values = {"id": row_id, "s": source, "k": kind, "d": key, "st": status, "data": json.dumps(data)}
            db.session.execute(insert, {**values, "now": now})
        db.session.execute(sa.text("UPDATE event SET escalates_id = 4 WHERE id = 6"))
        db.session.execute(
            sa.text("UPDATE event SET acknowledged_at = :now, acknowledged_by_id = 1 WHERE id = 4"), {"now": now}
        )
        db.session.commit()

        upgrade()
        incidents = db.session.execute(
            sa.text("SELECT id, source, key, state, open_key, acknowledged_by_id FROM incident ORDER BY id")
        ).all()
        assert [(i.source, i.key, i.state) for i in incidents] == [
            ("alertmanager", "fp1", "resolved"),
            ("alertmanager", "fp1", "triggered"),
            ("pagerduty", "PD1", "acknowledged"),
        ]
        assert incidents[0].open_key is None and incidents[1].open_key == "alertmanager:0:fp1"
        assert incidents[2].acknowledged_by_id == 1
        links = dict(db.session.execute(sa.text("SELECT id, incident_id FROM event ORDER BY id")).all())
        first, again, pd = (i.id for i in incidents)
        assert links == {1: first, 2: first, 3: again, 4: pd, 5: pd, 6: pd, 7: None}
        assert schema_diff() == []
        db.session.remove()
        downgrade(revision=f"{INCIDENTS_REVISION}-1")
        acked = db.session.execute(sa.text("SELECT acknowledged_by_id FROM event WHERE id = 4")).scalar()
        assert acked == 1
        db.session.remove()
        db.engine.dispose()


def test_sms_already_sent_are_priced_by_their_country(empty_database):
    """On a populated database: every SMS really sent gets its country and cost (default prices); simulated,
    unsent and email rows stay unpriced."""
    app = create_app(base_config(empty_database))
    with app.app_context():
        upgrade(revision="9089338994e6")
        now = datetime(2026, 11, 26, 10, tzinfo=UTC)
        insert = sa.text(
            "INSERT INTO notification (id, channel, recipient, body, status, simulated, attempts, sms_segments, "
            "sent_at, attempt_log, created_at, updated_at) "
            "VALUES (:id, :ch, :to, 'b', :st, :sim, 1, :seg, :sent, '[]', :now, :now)"
        )
        rows = [
            (1, "sms", "+14155550101", "delivered", False, 2, now),
            (2, "sms", "+447700900123", "sent", False, 1, now),
            (3, "sms", "+14155550102", "sent", True, 1, now),  # simulated: no cost
            (4, "sms", "+14155550103", "failed", False, 1, None),  # never accepted
            (5, "email", "a@x.example", "sent", False, None, now),
        ]
        for row_id, channel, to, status, simulated, segments, sent in rows:
            db.session.execute(
                insert,
                {
                    "id": row_id,
                    "ch": channel,
                    "to": to,
                    "st": status,
                    "sim": simulated,
                    "seg": segments,
                    "sent": sent,
                    "now": now,
                },
            )
        db.session.commit()
        upgrade()
        priced = db.session.execute(
            sa.text("SELECT id, sms_country, sms_cost_micros FROM notification ORDER BY id")
        ).all()
        assert [tuple(row) for row in priced] == [
            (1, "US", 16_600),
            (2, "GB", 52_400),
            (3, None, None),
            (4, None, None),
            (5, None, None),
        ]
        assert schema_diff() == []
        db.session.remove()
        downgrade(revision="9089338994e6")
        db.session.remove()
        db.engine.dispose()


def test_existing_events_keep_their_customers_dedup_namespace(empty_database):
    """On a populated database: each event's scope is its customer (0 for none); afterwards two customers may
    store the same dedup key, and one customer still cannot store it twice."""
    app = create_app(base_config(empty_database))
    with app.app_context():
        upgrade(revision="3b8e1d5f2a60")
        now = datetime(2026, 11, 26, 10, tzinfo=UTC)
        db.session.execute(
            sa.text(
                "INSERT INTO customer (id, name, timezone, is_active, created_at) VALUES (7, 'A', 'UTC', true, :n)"
            ),
            {"n": now},
        )
        insert = sa.text(
            "INSERT INTO event (id, customer_id, source, event_type, dedup_key, status, severity, title, body, "
            "labels, data, created_at) VALUES (:id, :c, 'generic', 'alert', 'k', 'firing', 'high', 'T', '', '{}', "
            "'{}', :now)"
        )
        db.session.execute(insert, {"id": 101, "c": 7, "now": now})
        db.session.execute(sa.text("UPDATE event SET dedup_key = 'k0' WHERE id = 101"))
        db.session.execute(insert, {"id": 102, "c": None, "now": now})
        db.session.commit()
        upgrade()
        scopes = db.session.execute(sa.text("SELECT id, customer_scope FROM event ORDER BY id")).all()
        assert [tuple(row) for row in scopes] == [(101, 7), (102, 0)]
        db.session.execute(
            sa.text(
                "INSERT INTO event (customer_id, customer_scope, source, event_type, dedup_key, status, severity, "
                "title, body, labels, data, created_at) VALUES (7, 7, 'generic', 'alert', 'k', 'firing', 'high', "
                "'T', '', '{}', '{}', :now)"
            ),
            {"now": now},
        )
        with pytest.raises(sa.exc.IntegrityError):
            db.session.execute(
                sa.text(
                    "INSERT INTO event (customer_id, customer_scope, source, event_type, dedup_key, status, "
                    "severity, title, body, labels, data, created_at) VALUES (7, 7, 'generic', 'alert', 'k0', "
                    "'firing', 'high', 'T', '', '{}', '{}', :now)"
                ),
                {"now": now},
            )
        db.session.rollback()
        assert schema_diff() == []
        db.session.remove()
        downgrade(revision="3b8e1d5f2a60")
        assert db.session.execute(sa.text("SELECT count(*) FROM event")).scalar() == 2
        db.session.remove()
        db.engine.dispose()


STORM_PARENT = "5d2f8a4c6e13"  # the revision before the storm guard
STORED_PREFERENCE = (
    'INSERT INTO "user" (id, email, name, password_hash, role, is_active, timezone, created_at) '
    "VALUES (1, 'a@x.example', 'Ann', 'x', 'admin', true, 'UTC', :now)",
    "INSERT INTO notification_preference (id, user_id, enabled_channels, min_severity_web, min_severity_email, "
    "min_severity_sms, event_types, job_types, created_at, updated_at) "
    "VALUES (1, 1, '[\"sms\"]', 'low', 'high', 'critical', '[]', '[]', :now, :now)",
)


def test_existing_preferences_get_the_storm_guard_on(empty_database):
    """On a populated database: every stored preference takes the storm guard's defaults (on, 5 SMS / 10 emails
    in 10 minutes), as a user without a preference has them; a limit of 0 is refused; down and up again."""
    app = create_app(base_config(empty_database))
    with app.app_context():
        upgrade(revision=STORM_PARENT)
        for statement in STORED_PREFERENCE:
            db.session.execute(sa.text(statement), {"now": datetime(2026, 11, 26, 10, tzinfo=UTC)})
        db.session.commit()
        upgrade()
        stored = db.session.execute(
            sa.text(
                "SELECT storm_guard, storm_sms_limit, storm_email_limit, storm_window_minutes "
                "FROM notification_preference"
            )
        ).one()
        assert tuple(stored) == (True, 5, 10, 10)
        with pytest.raises(sa.exc.IntegrityError):
            db.session.execute(sa.text("UPDATE notification_preference SET storm_sms_limit = 0"))
        db.session.rollback()
        assert schema_diff() == []
        db.session.remove()
        downgrade(revision=STORM_PARENT)
        upgrade()
        assert db.session.execute(sa.text("SELECT count(*) FROM notification_preference")).scalar() == 1
        db.session.remove()
        db.engine.dispose()
