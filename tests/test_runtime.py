"""How the app runs: configuration from the environment, the embedded worker, and worker.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import load_fixture, twilio_settings
from webapp import create_app
from webapp.config import ConfigError, database_uri
from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, utcnow

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": "Bearer test-alert-token"}


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def strand_in_outbox(user) -> None:
    """A notification left pending while the queue was down: only the periodic recovery job finds it."""
    db.session.add(
        Notification(
            user_id=user.id,
            channel=Channel.SMS,
            recipient="+14155550199",
            body="stranded in the outbox",
            status=NotificationStatus.PENDING,
            created_at=utcnow() - timedelta(minutes=5),
        )
    )
    db.session.commit()


def statuses() -> list[str]:
    db.session.expire_all()
    return [n.status for n in db.session.scalars(db.select(Notification))]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db.example.com:5432/ops", "postgresql+psycopg://u:p@db.example.com:5432/ops"),
        ("postgresql://u@h/ops", "postgresql+psycopg://u@h/ops"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_schemes(url, expected):
    assert database_uri(url, "/instance") == expected


def test_without_database_url_sqlite_lives_in_instance():
    assert database_uri(None, "/srv/instance") == "sqlite:////srv/instance/opsrelay.sqlite3"


@pytest.mark.parametrize("missing", ["ALERT_WEBHOOK_TOKEN", "SECRET_KEY"])
def test_production_refuses_to_start_without_its_secrets(monkeypatch, missing):
    monkeypatch.setenv("OPSRELAY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", "t" * 40)
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigError, match=f"{missing} must be set in production"):
        create_app()


def test_production_starts_with_its_secrets(monkeypatch, database):
    monkeypatch.setenv("OPSRELAY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", "t" * 40)
    monkeypatch.setenv("METRICS_TOKEN", "m" * 40)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database["uri"], "REDIS_URL": None, "EMBEDDED_WORKER": False})
    assert app.config["ALERT_WEBHOOK_TOKEN"] == "t" * 40
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_bad_number_in_the_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DELIVERY_MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigError, match="DELIVERY_MAX_ATTEMPTS must be a whole number"):
        create_app()


def test_embedded_worker_delivers_without_redis(make_app, app, make_user, twilio):
    """No REDIS_URL: the web process runs its own worker thread and the SMS goes out by itself."""
    admin = make_user("admin", phone="+14155550101")
    strand_in_outbox(admin)
    laptop = make_app(REDIS_URL=None, EMBEDDED_WORKER=True, **twilio_settings(twilio.base_url))
    response = laptop.test_client().post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers=AUTH,
        content_type="application/json",
    )
    assert response.status_code == 200
    assert wait_for(lambda: statuses() == [NotificationStatus.SENT] * 2)  # the thread runs periodic jobs too
    assert sorted(m["To"] for m in twilio.received) == ["+14155550101", "+14155550199"]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="worker.py serves Redis; the embedded run checks refusal")
def test_worker_process_delivers_from_redis(client, make_user, twilio, database):
    strand_in_outbox(make_user("admin", phone="+14155550101"))
    env = {
        **os.environ,
        "DATABASE_URL": database["uri"],
        **twilio_settings(twilio.base_url),
        "SECRET_KEY": "secret-for-tests",
    }
    worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env)  # noqa: S603
    try:
        response = client.post(
            "/api/v1/webhooks/alertmanager",
            data=load_fixture("webhooks/alertmanager_firing.json"),
            headers=AUTH,
            content_type="application/json",
        )
        assert response.status_code == 200
        assert wait_for(lambda: statuses() == [NotificationStatus.SENT] * 2, timeout=30)
        assert sorted(m["To"] for m in twilio.received) == ["+14155550101", "+14155550199"]
    finally:
        worker.terminate()
        worker.wait(10)


def test_worker_process_without_redis_says_why_it_will_not_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["DATABASE_URL"] = "sqlite:///" + str(tmp_path / "w.sqlite3")
    result = subprocess.run(  # noqa: S603
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "worker.py needs REDIS_URL" in result.stderr


def test_production_refuses_an_open_metrics_endpoint_unless_told(monkeypatch, database):
    monkeypatch.setenv("OPSRELAY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", "t" * 40)
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="METRICS_TOKEN must be set in production"):
        create_app()
    monkeypatch.setenv("METRICS_OPEN", "true")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database["uri"], "REDIS_URL": None, "EMBEDDED_WORKER": False})
    assert app.test_client().get("/metrics").status_code == 200


def test_log_format_must_be_json_or_text(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT must be json or text"):
        create_app()
