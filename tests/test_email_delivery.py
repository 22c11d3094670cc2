"""Email through each customer's SMTP config (or the app's MAIL_* settings) to aiosmtpd on loopback."""

from __future__ import annotations

import time

import pytest

from tests.smtp_fake import FakeSmtp, make_certificate
from webapp import outbox
from webapp.extensions import db
from webapp.models import Channel, Event, EventStatus, MessageTemplate, Notification, Severity, SmtpConfig, utcnow
from webapp.models import NotificationStatus as S
from webapp.security import encrypt_secret
from webapp.services.delivery import attempts

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("smtp"))


@pytest.fixture(scope="session")
def _smtp_servers(certificate):
    servers = {
        "starttls": FakeSmtp(*certificate, security="starttls", username="acme-mailer", password="acme-pw").start(),
        "ssl": FakeSmtp(*certificate, security="ssl", username="globex-mailer", password="globex-pw").start(),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def smtp(_smtp_servers, app, certificate):
    app.config["SMTP_CA_FILE"] = str(certificate[0])  # the client verifies the server's certificate
    for server in _smtp_servers.values():
        server.messages.clear()
        server.logins.clear()
        server.tls.clear()
        server._script.clear()
    return _smtp_servers


def smtp_config(customer, server: FakeSmtp, security: str, *, from_email: str, password: str | None = None):
    config = SmtpConfig(
        customer_id=customer.id,
        host="127.0.0.1",
        port=server.port,
        security=security,
        username=server.username,
        password_encrypted=encrypt_secret(password or server.password),
        from_email=from_email,
        from_name="OpsRelay",
        reply_to="noc@" + from_email.split("@")[1],
        timeout_seconds=5,
    )
    db.session.add(config)
    db.session.commit()
    return config


def email_for(customer, to: str, *, event_type: str = "job_failed", title: str = "Backup of core-sw-1 failed"):
    event = Event(
        source="test",
        dedup_key=f"{to}-{event_type}-{time.monotonic_ns()}",
        status=EventStatus.FIRING,
        severity=Severity.HIGH,
        event_type=event_type,
        title=title,
        body="Timeout after 300 s while reading the running config.",
        job_type="config_backup",
        customer_id=customer.id,
    )
    db.session.add(event)
    db.session.flush()
    notification = Notification(
        event_id=event.id, customer_id=customer.id, channel=Channel.EMAIL, recipient=to, status=S.PENDING
    )
    db.session.add(notification)
    db.session.commit()
    return notification


def wait_for_retry(notification: Notification) -> None:
    due = attempts.retry_job_time(notification.next_attempt_at)
    time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.1)


def test_each_customer_mails_through_its_own_smtp_server(smtp, make_customer, drain):
    acme, globex = make_customer("Acme"), make_customer("Globex")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example")
    smtp_config(globex, smtp["ssl"], "ssl", from_email="noc@globex.example")
    to_acme = email_for(acme, "ops@acme.example")
    to_globex = email_for(globex, "ops@globex.example", event_type="job_success", title="Backup of edge-1 done")
    outbox.deliver([to_acme.id, to_globex.id])
    db.session.commit()
    drain()

    assert (to_acme.status, to_globex.status) == (S.SENT, S.SENT)
    [acme_mail] = smtp["starttls"].messages
    [globex_mail] = smtp["ssl"].messages
    assert smtp["starttls"].logins == ["acme-mailer"] and smtp["starttls"].tls == [True]
    assert smtp["ssl"].logins == ["globex-mailer"] and smtp["ssl"].tls == [True]
    assert acme_mail["From"] == "OpsRelay <alerts@acme.example>" and acme_mail["To"] == "ops@acme.example"
    assert acme_mail["Reply-To"] == "noc@acme.example"
    assert globex_mail["From"] == "OpsRelay <noc@globex.example>"
    assert acme_mail["Subject"] == "[FAILED] Backup of core-sw-1 failed"
    assert globex_mail["Subject"] == "[OK] Backup of edge-1 done"
    # The Message-ID is the provider id in the delivery log.
    assert to_acme.provider_id == acme_mail["Message-ID"] and to_acme.provider_id.endswith("@acme.example>")
    assert to_globex.provider_id == globex_mail["Message-ID"]


def test_email_has_plain_text_and_html_parts_in_the_event_types_colour(smtp, make_customer, drain):
    acme = make_customer("Acme")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example")
    notification = email_for(acme, "ops@acme.example", title="Backup <core-sw-1> failed")
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    [mail] = smtp["starttls"].messages
    assert mail.is_multipart() and mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Backup <core-sw-1> failed" in text and "Job type: config_backup" in text
    assert "Backup &lt;core-sw-1&gt; failed" in html  # escaped in HTML
    assert "#dc3545" in html  # failed: red
    assert notification.body_html.replace("\n", "\r\n") in html  # the log keeps what was sent


@pytest.mark.parametrize(
    ("event_type", "colour", "subject"),
    [
        ("job_success", "#198754", "[OK] X"),
        ("job_failed", "#dc3545", "[FAILED] X"),
        ("job_partial", "#fd7e14", "[PARTIAL] X"),
        ("compliance_violation", "#dc3545", "[COMPLIANCE] X"),
        ("test", "#0d6efd", "OpsRelay test email"),
        ("sla_warning", "#ffc107", "[SLA WARNING] X"),
        ("sla_breach", "#dc3545", "[SLA BREACH] X"),
        ("alert", "#dc3545", "[HIGH] X is firing"),
    ],
)
def test_seeded_templates_of_each_event_type(smtp, make_customer, drain, event_type, colour, subject):
    acme = make_customer("Acme")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example")
    outbox.deliver([email_for(acme, "ops@acme.example", event_type=event_type, title="X").id])
    db.session.commit()
    drain()
    [mail] = smtp["starttls"].messages
    assert mail["Subject"] == subject
    assert colour in mail.get_body(("html",)).get_content()


def test_smtp_4xx_is_retried_then_delivered(app, smtp, make_customer, drain):
    # The retry must not be due before the first drain ends (the worker runs due retries in its burst): at
    # the tests' 0.2 s backoff it could be, on a loaded machine, within 0.1 s. 1 s: due 0.5-1 s later.
    app.config["DELIVERY_BACKOFF_SECONDS"] = 1.0
    acme = make_customer("Acme")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example")
    smtp["starttls"].fail_next("ops@acme.example", "451 4.3.0 Mailbox busy, try again later")
    notification = email_for(acme, "ops@acme.example")
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == S.QUEUED
    assert notification.error_code == "451" and "try again later" in notification.error_message
    assert smtp["starttls"].messages == []
    wait_for_retry(notification)
    drain()
    assert notification.status == S.SENT and notification.attempts == 2
    assert len(smtp["starttls"].messages) == 1


def test_smtp_5xx_fails_at_once_with_the_servers_answer(smtp, make_customer, drain):
    acme = make_customer("Acme")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example")
    smtp["starttls"].fail_next("nobody@acme.example", "550 5.1.1 No such user here")
    notification = email_for(acme, "nobody@acme.example")
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == S.FAILED and notification.attempts == 1
    assert notification.error_code == "550"
    assert "No such user here" in notification.error_message and "SMTP config #" in notification.error_message


def test_wrong_smtp_password_fails_with_the_auth_error(smtp, make_customer, drain):
    acme = make_customer("Acme")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example", password="wrong")
    notification = email_for(acme, "ops@acme.example")
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == S.FAILED and notification.error_code == "535"
    assert smtp["starttls"].messages == []


def test_without_an_smtp_config_the_apps_mail_settings_are_used(smtp, app, make_customer, drain):
    server = smtp["starttls"]
    app.config.update(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=server.port,
        MAIL_USE_TLS=True,
        MAIL_USERNAME=server.username,
        MAIL_PASSWORD=server.password,
        MAIL_DEFAULT_SENDER="opsrelay@ops.example",
    )
    notification = email_for(make_customer("No SMTP Inc"), "ops@nosmtp.example")
    outbox.deliver([notification.id])
    db.session.commit()
    drain()
    assert notification.status == S.SENT
    [mail] = server.messages
    assert mail["From"] == "opsrelay@ops.example" and server.logins == [server.username]


def test_a_broken_template_fails_that_notification_only(smtp, make_customer, drain):
    acme, globex = make_customer("Acme"), make_customer("Globex")
    smtp_config(acme, smtp["starttls"], "starttls", from_email="alerts@acme.example")
    smtp_config(globex, smtp["starttls"], "starttls", from_email="noc@globex.example")
    db.session.add(
        MessageTemplate(
            customer_id=acme.id,
            name="acme_failed",
            event_type="job_failed",
            channel=Channel.EMAIL,
            subject="{{ event.title",
            body_text="x",
        )
    )
    db.session.commit()
    broken = email_for(acme, "ops@acme.example")
    fine = email_for(globex, "ops@globex.example")
    outbox.deliver([broken.id, fine.id])
    db.session.commit()
    drain()
    assert broken.status == S.FAILED and broken.error_code == "template"
    assert broken.error_message.startswith("email template 'acme_failed': template error:")
    assert fine.status == S.SENT
    assert [m["To"] for m in smtp["starttls"].messages] == ["ops@globex.example"]
