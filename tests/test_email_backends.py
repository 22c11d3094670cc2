"""Configuration that tells the truth: partial Twilio / MAIL_* settings are startup errors naming what is
missing; the console and file email backends let a laptop run without an SMTP server."""

from __future__ import annotations

import email
import logging

import pytest
from flask_mail import email_dispatched

from tests.test_email_delivery import email_for
from webapp import create_app, outbox
from webapp.config import ConfigError
from webapp.extensions import db, mail
from webapp.models import NotificationStatus as S


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER missing"),
        ({"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "tok"}, "TWILIO_PHONE_NUMBER missing"),
        ({"TWILIO_PHONE_NUMBER": "+15005550006"}, "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN missing"),
    ],
)
@pytest.mark.parametrize("env", ["development", "production"])
def test_partial_twilio_settings_refuse_to_start_naming_what_is_missing(monkeypatch, present, missing, env):
    monkeypatch.setenv("OPSRELAY_ENV", env)
    for name in ("SECRET_KEY", "ALERT_WEBHOOK_TOKEN", "METRICS_TOKEN"):
        monkeypatch.setenv(name, "x" * 40)
    for name, value in present.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"Twilio is only partly configured: .* but {missing}"):
        create_app()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"MAIL_USERNAME": "m", "MAIL_PASSWORD": "pw"}, "MAIL_USERNAME, MAIL_PASSWORD set but MAIL_SERVER missing"),
        ({"MAIL_SERVER": "smtp.example.com", "MAIL_USERNAME": "mailer"}, "go together: MAIL_PASSWORD missing"),
        ({"MAIL_SERVER": "smtp.example.com", "MAIL_PASSWORD": "pw"}, "go together: MAIL_USERNAME missing"),
        ({"MAIL_SERVER": "smtp.example.com", "MAIL_USE_TLS": "1", "MAIL_USE_SSL": "1"}, "exclude each other"),
        ({"EMAIL_BACKEND": "pigeon"}, "EMAIL_BACKEND must be one of smtp, console, file"),
    ],
)
def test_partial_mail_settings_are_a_clear_startup_error(monkeypatch, settings, message):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        create_app()


def test_development_without_mail_server_uses_the_console_backend(monkeypatch, tmp_path):
    monkeypatch.delenv("MAIL_SERVER", raising=False)
    monkeypatch.delenv("EMAIL_BACKEND", raising=False)
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": None, "EMBEDDED_WORKER": False})
    assert app.config["EMAIL_BACKEND"] == "console"
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": None, "EMBEDDED_WORKER": False})
    assert app.config["EMAIL_BACKEND"] == "smtp"


def test_console_backend_logs_the_email_and_marks_it_simulated(app, make_customer, drain, caplog):
    app.config["EMAIL_BACKEND"] = "console"
    app.config["MAIL_SERVER"] = "127.0.0.1"
    app.config["MAIL_PORT"] = 1  # nothing listens: the console backend must not try
    notification = email_for(make_customer("Acme"), "ops@acme.example")
    with mail.record_messages() as recorded, caplog.at_level(logging.INFO, logger="webapp.channels.email_smtp"):
        outbox.deliver([notification.id])
        db.session.commit()
        drain()
    assert notification.status == S.SENT and notification.simulated is True
    [message] = recorded  # Flask-Mail's record_messages sees it
    assert message.recipients == ["ops@acme.example"] and message.subject == "[FAILED] Backup of core-sw-1 failed"
    assert notification.provider_id == message.msgId
    assert f"simulated email {message.msgId} to ops@acme.example" in caplog.text


def test_file_backend_writes_an_eml_file_per_message(app, make_customer, drain, tmp_path):
    app.config.update(EMAIL_BACKEND="file", EMAIL_FILE_DIR=str(tmp_path / "mail"), MAIL_DEFAULT_SENDER="ops@x.example")
    notification = email_for(make_customer("Acme"), "ops@acme.example")
    dispatched = []
    with email_dispatched.connected_to(lambda app, message: dispatched.append(message)):
        outbox.deliver([notification.id])
        db.session.commit()
        drain()
    assert notification.status == S.SENT and notification.simulated is True
    [path] = (tmp_path / "mail").glob("*.eml")
    written = email.message_from_bytes(path.read_bytes())
    assert written["To"] == "ops@acme.example" and written["From"] == "ops@x.example"
    assert written["Message-ID"] == notification.provider_id
    assert written.get_content_type() == "multipart/alternative"
    assert len(dispatched) == 1
