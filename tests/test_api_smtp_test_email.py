"""POST /api/v1/smtp/<id>/test-email end to end: the email reaches a real SMTP server on loopback."""

from __future__ import annotations

from tests.test_email_delivery import _smtp_servers, certificate, smtp  # noqa: F401  (fixtures)
from webapp.extensions import db
from webapp.models import Notification, NotificationStatus, Role
from webapp.services.integrations import api_keys


def test_test_email_is_delivered_through_the_config(client, make_user, customer, smtp, drain):  # noqa: F811
    admin = make_user(Role.ADMIN)
    _, plain = api_keys.create_key(name="t", scopes=["admin"], customer=None, expires_days=None, created_by=admin)
    db.session.commit()
    headers = {"X-API-Key": plain}
    server = smtp["starttls"]
    created = client.post(
        "/api/v1/smtp",
        json={
            "customer_id": customer.id,
            "host": "127.0.0.1",
            "port": server.port,
            "security": "starttls",
            "username": "acme-mailer",
            "password": "acme-pw",
            "from_email": "noc@acme.example.com",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.json
    response = client.post(
        f"/api/v1/smtp/{created.json['id']}/test-email", json={"recipient_email": "ops@example.com"}, headers=headers
    )
    assert response.status_code == 202
    drain()
    notification = db.session.get(Notification, response.json["notification_id"])
    assert notification.status == NotificationStatus.SENT, notification.error_message
    assert [m["To"] for m in server.messages] == ["ops@example.com"]
    assert "test email" in server.messages[0]["Subject"].lower()
    assert client.get(f"/api/v1/notifications/{notification.id}", headers=headers).json["status"] == "sent"
