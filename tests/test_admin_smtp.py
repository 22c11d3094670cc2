"""SMTP settings pages: write-only password, roles, and the Send test email flow with its status."""

from __future__ import annotations

from tests.test_email_delivery import _smtp_servers, certificate, smtp  # noqa: F401  (fixtures)
from webapp.extensions import db
from webapp.models import AuditLog, Channel, Notification, NotificationStatus, SmtpConfig
from webapp.security import decrypt_secret

FORM = {
    "name": "Primary",
    "host": "smtp.example.com",
    "port": "587",
    "security": "starttls",
    "username": "mailer",
    "password": "s3cret-smtp-pass",
    "from_email": "Alerts@Example.com",
    "from_name": "Acme alerts",
    "reply_to": "",
    "timeout_seconds": "30",
    "enabled": "y",
}


def create(client, customer, **changes) -> SmtpConfig:
    answer = client.post("/smtp/new", data={**FORM, "customer": customer.id, **changes})
    assert answer.status_code == 302, answer.text
    return db.session.scalars(db.select(SmtpConfig).order_by(SmtpConfig.id.desc())).first()


def test_operator_creates_settings_and_the_password_is_encrypted_and_never_shown(client, login_as, customer):
    login_as("operator")
    config = create(client, customer)
    assert config.from_email == "alerts@example.com" and config.host == "smtp.example.com"
    assert config.password_encrypted != "s3cret-smtp-pass"
    assert decrypt_secret(config.password_encrypted) == "s3cret-smtp-pass"
    page = client.get(f"/smtp/{config.id}").text
    assert "s3cret-smtp-pass" not in page and config.password_encrypted not in page
    assert "A password is stored (encrypted); it is never shown." in page
    audit = db.session.scalars(db.select(AuditLog).where(AuditLog.action == "smtp.create")).one()
    assert "s3cret" not in str(audit.changes) and audit.changes["password"] == "changed"


def test_empty_password_keeps_the_old_one(client, login_as, customer):
    login_as("operator")
    config = create(client, customer)
    stored = config.password_encrypted
    answer = client.post(f"/smtp/{config.id}", data={**FORM, "password": "", "from_name": "Acme NOC"})
    assert answer.status_code == 302
    db.session.refresh(config)
    assert config.from_name == "Acme NOC" and config.password_encrypted == stored  # same server: kept
    client.post(f"/smtp/{config.id}", data={**FORM, "password": "new-pass"})
    db.session.refresh(config)
    assert decrypt_secret(config.password_encrypted) == "new-pass"


def test_bad_input_is_refused_next_to_the_field_and_kept(client, login_as, customer):
    login_as("operator")
    page = client.post("/smtp/new", data={**FORM, "customer": customer.id, "port": "99999", "from_email": "nope"})
    assert page.status_code == 200
    assert "Number must be between 1 and 65535." in page.text
    assert "An email address must have an @-sign." in page.text
    assert 'value="smtp.example.com"' in page.text  # what was typed is kept
    assert "s3cret-smtp-pass" not in page.text  # but never the password
    assert db.session.scalar(db.select(db.func.count()).select_from(SmtpConfig)) == 0


def test_viewer_sees_but_cannot_change_or_test(client, login_as, customer):
    login_as("viewer")
    config = SmtpConfig(customer_id=customer.id, host="smtp.example.com", from_email="a@example.com")
    db.session.add(config)
    db.session.commit()
    assert "smtp.example.com" in client.get("/smtp").text
    page = client.get(f"/smtp/{config.id}").text
    assert "<fieldset disabled>" in page and "Send test email" not in page
    assert client.post(f"/smtp/{config.id}", data={**FORM}).status_code == 403
    assert client.post(f"/smtp/{config.id}/test", data={"to": "x@example.com"}).status_code == 403
    assert client.get("/smtp/new").status_code == 403
    db.session.refresh(config)
    assert config.host == "smtp.example.com"


def test_other_customers_settings_are_404(client, login_as, make_customer):
    other = make_customer("Globex")
    login_as("operator")
    config = SmtpConfig(customer_id=other.id, host="smtp.globex.test", from_email="a@globex.test")
    db.session.add(config)
    db.session.commit()
    assert "smtp.globex.test" not in client.get("/smtp").text
    assert client.get(f"/smtp/{config.id}").status_code == 404
    assert client.post(f"/smtp/{config.id}/test", data={"to": "x@example.com"}).status_code == 404
    answer = client.post("/smtp/new", data={**FORM, "customer": other.id})
    assert "Not a valid choice" in answer.text


def test_send_test_email_goes_through_this_config_and_the_page_watches_it(client, login_as, customer, drain, smtp):  # noqa: F811
    login_as("operator")
    server = smtp["starttls"]
    dead = create(client, customer, name="Old relay", host="127.0.0.1", port="1")  # oldest enabled: not this one
    config = create(
        client,
        customer,
        name="Acme relay",
        host="127.0.0.1",
        port=str(server.port),
        username="acme-mailer",
        password="acme-pw",
    )
    answer = client.post(f"/smtp/{config.id}/test", data={"to": "Oncall@Example.com"})
    notification = db.session.scalars(db.select(Notification)).one()
    assert answer.headers["Location"] == f"/smtp/{config.id}?watch={notification.id}"
    assert notification.channel == Channel.EMAIL and notification.event_id is None
    assert notification.recipient == "oncall@example.com" and notification.subject == "OpsRelay test email"
    assert notification.status == NotificationStatus.QUEUED

    page = client.get(answer.headers["Location"]).text
    assert f'data-watch-url="/deliveries/{notification.id}/status"' in page and "js/watch-send.js" in page
    assert client.get(f"/deliveries/{notification.id}/status").get_json()["status"] == "queued"

    drain()
    status = client.get(f"/deliveries/{notification.id}/status").get_json()
    assert status["status"] == "sent" and status["settled"] is True
    [message] = server.messages
    assert message["To"] == "oncall@example.com" and message["Subject"] == "OpsRelay test email"
    assert "Acme relay" in message.get_content() and server.logins == ["acme-mailer"]
    listing = client.get("/smtp").text
    assert "never tested" in listing.split("Old relay")[1].split("</tr>")[0]
    assert "sent" in listing.split("Acme relay")[1].split("</tr>")[0]
    assert dead.id != config.id


def test_send_test_email_shows_the_smtp_servers_own_error(client, login_as, customer, drain, smtp):  # noqa: F811
    login_as("operator")
    server = smtp["starttls"]
    server.fail_next("nobody@example.com", "550 5.1.1 No such user here")
    config = create(
        client, customer, host="127.0.0.1", port=str(server.port), username="acme-mailer", password="acme-pw"
    )
    client.post(f"/smtp/{config.id}/test", data={"to": "nobody@example.com"})
    drain()
    notification = db.session.scalars(db.select(Notification)).one()
    status = client.get(f"/deliveries/{notification.id}/status").get_json()
    assert status["status"] == "failed" and status["done"] is True
    assert "550" in status["error_message"] and "No such user here" in status["error_message"]
    assert "No such user here" in client.get(f"/smtp/{config.id}").text


def test_test_email_needs_a_valid_address(client, login_as, customer):
    login_as("operator")
    config = create(client, customer)
    page = client.post(f"/smtp/{config.id}/test", data={"to": "not-an-address"})
    assert page.status_code == 422 and "An email address must have an @-sign." in page.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Notification)) == 0
