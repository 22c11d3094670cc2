"""Test fixtures: a migrated database (SQLite by default, PostgreSQL with DATABASE_URL), the queue
(fakeredis by default, Redis with REDIS_URL), a loopback Twilio, users and logins."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g, request_started
from flask_migrate import upgrade

from tests.twilio_fake import FakeTwilio
from webapp import create_app
from webapp.config import database_uri
from webapp.extensions import db
from webapp.models import Customer, MessageTemplate, PhoneNumber, Role, Ticket, User
from webapp.outbox import ROUTE_JOB
from webapp.queue import EmbeddedWorker, get_queue

FIXTURES = Path(__file__).parent / "fixtures"
# Hypothesis (under schemathesis) keeps its cache outside the repository's top level.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "opsrelay-hypothesis"))
PASSWORD = "pw-for-tests"
TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-test-auth-token"
LOOPBACK = "127.0.0.0/8, ::1, localhost"


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL")
    return database_uri(url, "") if url else None


def ensure_postgres_database(url: str) -> None:
    """CREATE DATABASE for `url` if it does not exist (connecting to the server's postgres database)."""
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database})
        if not exists:
            connection.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def base_config(uri: str) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": uri,
        "SECRET_KEY": "secret-for-tests",
        "WTF_CSRF_ENABLED": False,
        "RQ_INLINE": False,
        "EMBEDDED_WORKER": False,
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "ALERT_WEBHOOK_TOKEN": "test-alert-token",
        "TWILIO_ACCOUNT_SID": None,
        "TWILIO_AUTH_TOKEN": None,
        "TWILIO_PHONE_NUMBER": None,
        "EMAIL_BACKEND": "smtp",  # the email tests talk to aiosmtpd on loopback
        "DELIVERY_BACKOFF_SECONDS": 0.2,
        "DELIVERY_MAX_ATTEMPTS": 3,
        "LOGIN_RATE_LIMIT": "5 per minute",
        "EGRESS_ALLOW": LOOPBACK,  # the loopback Twilio, SMTP server and webhook receivers
    }


@pytest.fixture(scope="session")
def database(tmp_path_factory) -> dict:
    """Migrate one database for the session (the real revisions, not create_all); remember the seed rows."""
    uri = _postgres_url()
    if uri:
        ensure_postgres_database(uri)
        engine = sa.create_engine(uri)
        with engine.begin() as connection:  # every run migrates from nothing
            connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    else:
        uri = "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    app = create_app(base_config(uri))
    queue = get_queue(app)
    if not queue.embedded:
        queue.connection.flushdb()  # no jobs left over from an interrupted run
    with app.app_context():
        upgrade()
        seeds = [
            {c.key: getattr(t, c.key) for c in MessageTemplate.__table__.columns if c.key != "id"}
            for t in db.session.scalars(db.select(MessageTemplate).order_by(MessageTemplate.id))
        ]  # in id order: every test sees the ids a fresh install has, on every database
        db.session.remove()
        db.engine.dispose()
    return {"uri": uri, "seeds": seeds}


def _reset(seeds: list[dict]) -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
        db.session.execute(sa.text("DELETE FROM sqlite_sequence"))  # ids restart, as RESTART IDENTITY does
    db.session.execute(sa.insert(MessageTemplate.__table__), seeds)
    db.session.commit()


@pytest.fixture
def make_app(database):
    """Build an app on the session database; extra config as keyword arguments."""
    apps = []

    def _make(**overrides):
        app = create_app({**base_config(database["uri"]), **overrides})
        apps.append(app)
        return app

    yield _make
    for app in apps:
        queue = get_queue(app)
        queue.stop_embedded_worker()
        if not queue.embedded and queue.ping():
            queue.connection.flushdb()
        with app.app_context():
            db.engine.dispose()  # close its pooled connections now: the PostgreSQL server is shared


def twilio_settings(base_url: str, *, auth_token: str = TWILIO_TOKEN) -> dict:
    """Config that points the app's real twilio client at `base_url` (the loopback Twilio)."""
    return {
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": auth_token,
        "TWILIO_PHONE_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": base_url,
        "TWILIO_MESSAGES_PER_SECOND": "1000",  # the loopback Twilio has no rate limit unless a test gives it one
    }


@pytest.fixture
def app(make_app, database, twilio):
    app = make_app(**twilio_settings(twilio.base_url))
    with app.app_context():
        _reset(database["seeds"])
        yield app
        db.session.remove()


@pytest.fixture(scope="session")
def _twilio_server():
    server = FakeTwilio(TWILIO_SID, TWILIO_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def twilio(_twilio_server):
    _twilio_server.reset()
    return _twilio_server


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def drain(app):
    """Run the queue's jobs (due retries included) with a real RQ worker until none are left."""

    def _drain() -> None:
        worker = get_queue(app).worker(EmbeddedWorker)
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        db.session.expire_all()

    return _drain


def run_routing_jobs(app) -> int:
    """Run the routing jobs waiting on the queue (a sender's events joined to incidents, pages decided, tickets
    opened) and leave the deliveries they queue for `drain`: what a sender sees a moment after its answer.
    Returns how many ran."""
    ran = 0
    for rq_queue in get_queue(app).queues.values():
        for job in rq_queue.get_jobs():
            if job.func_name == ROUTE_JOB:
                rq_queue.remove(job)
                job.func(*job.args, **job.kwargs)  # the job as a worker runs it: it commits
                ran += 1
    db.session.expire_all()
    return ran


@pytest.fixture
def route(app):
    """run_routing_jobs for this test's app."""
    return lambda: run_routing_jobs(app)


@pytest.fixture
def make_customer(app):
    counter = iter(range(1, 10_000))

    def _make(name: str | None = None, **fields) -> Customer:
        customer = Customer(name=name or f"Customer {next(counter)}", **fields)
        db.session.add(customer)
        db.session.commit()
        return customer

    return _make


@pytest.fixture
def customer(make_customer) -> Customer:
    """The customer that users belong to unless a test says otherwise."""
    return make_customer("Acme Corp")


@pytest.fixture
def make_ticket(app):
    def _make(*, customer: Customer, title: str = "Disk full on db-1", **fields) -> Ticket:
        ticket = Ticket(customer_id=customer.id, title=title, **fields)
        db.session.add(ticket)
        db.session.commit()
        return ticket

    return _make


@pytest.fixture
def make_user(app, customer):
    counter = iter(range(1, 10_000))

    def _make(
        role: str | Role = Role.OPERATOR,
        *,
        email: str | None = None,
        name: str | None = None,
        password: str = PASSWORD,
        phone: str | None = None,
        active: bool = True,
        opted_out: bool = False,
        customers: list[Customer] | None = None,
    ) -> User:
        n = next(counter)
        user = User(
            email=email or f"user{n}@example.com",
            name=name or f"User {n}",
            role=Role(role),
            is_active=active,
            customers=[customer] if customers is None else customers,
        )
        user.set_password(password)
        if phone:
            user.phone_numbers.append(PhoneNumber(number=phone, is_primary=True, opted_out=opted_out))
        db.session.add(user)
        db.session.commit()
        return user

    return _make


@pytest.fixture
def each_request_loads_its_user(app):
    """The tests share one app context (and so `g`): make every request load its user from its own cookies,
    as separate browsers do."""

    def forget(sender, **extra):
        g.pop("_login_user", None)

    request_started.connect(forget, app)
    yield
    request_started.disconnect(forget, app)


@pytest.fixture
def login_as(client, make_user):
    def _login(role: str | Role = Role.OPERATOR, **kwargs) -> User:
        user = make_user(role, **kwargs)
        response = client.post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 302, response.text
        return user

    return _login


def load_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
