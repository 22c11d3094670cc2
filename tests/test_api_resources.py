"""The JSON API's resources: events, the delivery log, SMTP configs and preferences — auth, scoping,
validation."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    Notification,
    NotificationPreference,
    NotificationStatus,
    Role,
    SmtpConfig,
    utcnow,
)
from webapp.security import decrypt_secret
from webapp.services.integrations import api_keys


@pytest.fixture
def key(app, make_user):
    """make a key: key(scopes, customer) -> headers."""
    owner = make_user(Role.ADMIN)

    def make(*scopes: str, customer=None) -> dict:
        _, plain = api_keys.create_key(
            name="t", scopes=list(scopes) or ["read"], customer=customer, expires_days=None, created_by=owner
        )
        db.session.commit()
        return {"X-API-Key": plain}

    return make


def token_for(client, user) -> dict:
    token = client.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD}).json
    return {"Authorization": f"Bearer {token['access_token']}"}


ROUTES = [
    ("get", "/api/v1/events"),
    ("post", "/api/v1/events"),
    ("get", "/api/v1/events/1"),
    ("get", "/api/v1/notifications"),
    ("get", "/api/v1/notifications/1"),
    ("get", "/api/v1/smtp"),
    ("post", "/api/v1/smtp"),
    ("get", "/api/v1/smtp/1"),
    ("put", "/api/v1/smtp/1"),
    ("patch", "/api/v1/smtp/1"),
    ("delete", "/api/v1/smtp/1"),
    ("post", "/api/v1/smtp/1/test-email"),
    ("get", "/api/v1/preferences"),
    ("post", "/api/v1/preferences"),
    ("get", "/api/v1/preferences/mine"),
    ("get", "/api/v1/preferences/1"),
    ("put", "/api/v1/preferences/1"),
    ("patch", "/api/v1/preferences/1"),
    ("delete", "/api/v1/preferences/1"),
    ("get", "/api/v1/auth/api-keys"),
    ("post", "/api/v1/auth/api-keys"),
    ("delete", "/api/v1/auth/api-keys/1"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_key(client, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code == 401
    assert response.is_json and "Bearer" in response.headers["WWW-Authenticate"]


WRITES = [(m, p) for m, p in ROUTES if m != "get"]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_read_key_writes_nothing(client, key, method, path):
    response = getattr(client, method)(path, json={}, headers=key("read"))
    assert response.status_code == 403


# --- events ------------------------------------------------------------------------------------


def test_event_create_list_and_detail_with_notifications(client, key, customer, make_user, route):
    make_user(Role.ADMIN, phone="+14155550101")
    headers = key("write", customer=customer)
    created = client.post(
        "/api/v1/events",
        json={"title": "Core switch down", "severity": "critical", "dedup_key": "sw-1", "labels": {"site": "par"}},
        headers=headers,
    )
    assert created.status_code == 201, created.json
    assert created.json["routing"] == "queued"  # who is notified: the routing job decides right after
    event_id = created.json["event_ids"][0]
    again = client.post("/api/v1/events", json={"title": "Core switch down", "dedup_key": "sw-1"}, headers=headers)
    assert again.status_code == 200 and again.json["duplicates"] == 1
    route()
    listed = client.get("/api/v1/events", headers=headers).json
    assert [e["id"] for e in listed["items"]] == [event_id]
    detail = client.get(f"/api/v1/events/{event_id}", headers=headers).json
    assert (detail["source"], detail["customer_id"], detail["labels"]) == ("api", customer.id, {"site": "par"})
    # Two admins: the key's owner has no phone (suppressed, with the reason), the other is paged.
    assert sorted((n["channel"], n["recipient"] or "-", n["status"]) for n in detail["notifications"]) == [
        ("sms", "-", "suppressed"),
        ("sms", "…0101", "pending"),  # handed to the queue; a worker claims it from pending
    ]


def test_events_are_scoped_to_the_key_customer(client, key, customer, make_customer):
    other = make_customer("Other Corp")
    client.post("/api/v1/events", json={"title": "other's", "customer_id": other.id}, headers=key("write"))
    other_id = db.session.scalar(db.select(Event.id))
    scoped = key("admin", customer=customer)
    assert client.get("/api/v1/events", headers=scoped).json["items"] == []
    assert client.get(f"/api/v1/events/{other_id}", headers=scoped).status_code == 404
    refused = client.post("/api/v1/events", json={"title": "x", "customer_id": other.id}, headers=scoped)
    assert refused.status_code == 422 and "customer_id" in refused.json["error"]["fields"]


def test_event_list_pages_by_cursor_and_filters(client, key):
    headers = key("write")
    for n in range(5):
        client.post("/api/v1/events", json={"title": f"job {n}", "event_type": "job_success"}, headers=headers)
    client.post("/api/v1/events", json={"title": "alert"}, headers=headers)
    first = client.get("/api/v1/events?limit=4&event_type=job_success", headers=headers).json
    second = client.get(f"/api/v1/events?limit=4&event_type=job_success&cursor={first['next_cursor']}", headers=headers)
    titles = [e["title"] for e in first["items"] + second.json["items"]]
    assert titles == [f"job {n}" for n in reversed(range(5))]
    assert second.json["next_cursor"] is None
    for query in ("limit=0", "limit=x", "cursor=!!", "status=weird", "created_after=yesterday"):
        response = client.get(f"/api/v1/events?{query}", headers=headers)
        assert response.status_code == 400, query


# --- notifications -----------------------------------------------------------------------------


def _notification(event, user, *, channel=Channel.SMS, status=NotificationStatus.SENT, sent=True):
    now = utcnow()
    row = Notification(
        event_id=event.id if event else None,
        user_id=user.id if user else None,
        customer_id=event.customer_id if event else None,
        channel=channel,
        recipient="+14155550101" if channel == Channel.SMS else "ops@example.com",
        status=status,
        created_at=now,
        updated_at=now,
        sent_at=now if sent else None,
    )
    db.session.add(row)
    db.session.commit()
    return row


def test_delivery_log_filters_orders_and_scopes(client, key, customer, make_customer, make_user, make_ticket):
    other = make_customer("Other Corp")
    user = make_user(Role.OPERATOR)
    ticket = make_ticket(customer=customer)
    now = utcnow()
    mine = Event(
        source="api",
        dedup_key="a",
        status="firing",
        severity="high",
        title="A",
        customer_id=customer.id,
        ticket_id=ticket.id,
        event_type="job_failed",
        created_at=now,
    )
    theirs = Event(
        source="api", dedup_key="b", status="firing", severity="high", title="B", customer_id=other.id, created_at=now
    )
    db.session.add_all([mine, theirs])
    db.session.commit()
    sms = _notification(mine, user)
    email = _notification(mine, user, channel=Channel.EMAIL, status=NotificationStatus.SUPPRESSED, sent=False)
    _notification(theirs, user)
    scoped = key("read", customer=customer)
    ids = lambda q: [n["id"] for n in client.get(f"/api/v1/notifications?{q}", headers=scoped).json["items"]]  # noqa: E731
    assert ids("") == [email.id, sms.id]
    assert ids("ordering=created_at") == [sms.id, email.id]
    assert ids("ordering=-sent_at") == [sms.id]
    assert ids("channel=email") == [email.id]
    assert ids("status=suppressed") == [email.id]
    assert ids(f"ticket_id={ticket.id}") == [sms.id, email.id][::-1]
    assert ids("event_type=job_failed") == [email.id, sms.id]
    assert ids("event_type=alert") == []
    assert ids(f"customer_id={other.id}") == []
    detail = client.get(f"/api/v1/notifications/{sms.id}", headers=scoped).json
    assert detail["recipient"] == "…0101"  # phone numbers masked
    assert client.get(f"/api/v1/notifications/{sms.id + 2}", headers=scoped).status_code == 404
    assert client.get("/api/v1/notifications?ordering=random", headers=scoped).status_code == 400


# --- SMTP ----------------------------------------------------------------------------------------

SMTP = {
    "host": "smtp.example.com",
    "port": 587,
    "use_tls": True,
    "username": "mailer",
    "password": "s3cret-app-password",
    "from_email": "noc@example.com",
    "enabled": True,
}


def test_smtp_crud_keeps_the_password_write_only(client, key, customer):
    admin = key("admin")
    created = client.post("/api/v1/smtp", json={**SMTP, "customer_id": customer.id}, headers=admin)
    assert created.status_code == 201, created.json
    assert created.json["password"] == "********" and created.json["security"] == "starttls"
    assert "s3cret" not in created.text
    config = db.session.get(SmtpConfig, created.json["id"])
    assert decrypt_secret(config.password_encrypted) == "s3cret-app-password"
    url = f"/api/v1/smtp/{config.id}"
    patched = client.patch(url, json={"from_name": "NOC", "password": "********"}, headers=admin)
    assert patched.status_code == 200 and patched.json["from_name"] == "NOC"
    db.session.expire_all()
    assert decrypt_secret(db.session.get(SmtpConfig, config.id).password_encrypted) == "s3cret-app-password"
    moved = client.patch(url, json={"port": 465, "security": "ssl", "password": "********"}, headers=admin)
    assert moved.status_code == 200 and moved.json["port"] == 465
    assert moved.json["password"] is None  # another server: the password was not carried over to it
    replaced = client.put(url, json={**SMTP, "customer_id": customer.id, "password": "new-one"}, headers=admin)
    assert replaced.status_code == 200 and replaced.json["port"] == 587
    db.session.expire_all()
    assert decrypt_secret(db.session.get(SmtpConfig, config.id).password_encrypted) == "new-one"
    assert "new-one" not in client.get(url, headers=admin).text
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"port": 70000}, "port"),
        ({"host": ""}, "host"),
        ({"from_email": "not-an-email"}, "from_email"),
        ({"security": "tls1.0"}, "security"),
        ({"customer_id": 999}, "customer_id"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"sneaky": True}, "sneaky"),
    ],
)
def test_smtp_validation_is_422_and_stores_nothing(client, key, customer, change, field):
    response = client.post("/api/v1/smtp", json={**SMTP, "customer_id": customer.id, **change}, headers=key("admin"))
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]
    assert db.session.scalar(db.select(db.func.count(SmtpConfig.id))) == 0


def test_smtp_of_another_customer_is_404(client, key, customer, make_customer):
    other = make_customer("Other Corp")
    created = client.post("/api/v1/smtp", json={**SMTP, "customer_id": other.id}, headers=key("admin")).json
    scoped = key("admin", customer=customer)
    assert client.get(f"/api/v1/smtp/{created['id']}", headers=scoped).status_code == 404
    assert client.delete(f"/api/v1/smtp/{created['id']}", headers=scoped).status_code == 404
    assert client.get("/api/v1/smtp", headers=scoped).json["items"] == []


def test_test_email_creates_a_queued_email_notification(client, key, customer):
    created = client.post("/api/v1/smtp", json={**SMTP, "customer_id": customer.id}, headers=key("admin")).json
    url = f"/api/v1/smtp/{created['id']}/test-email"
    assert client.post(url, json={"recipient_email": "nope"}, headers=key("write")).status_code == 422
    response = client.post(url, json={"recipient_email": "test@example.com"}, headers=key("write"))
    assert response.status_code == 202, response.json
    notification = db.session.get(Notification, response.json["notification_id"])
    assert (notification.channel, notification.recipient, notification.event_id) == ("email", "test@example.com", None)
    assert notification.status in (NotificationStatus.QUEUED, NotificationStatus.PENDING)
    assert notification.customer_id == customer.id


# --- preferences -------------------------------------------------------------------------------


def test_my_preferences_create_update_delete_with_a_user_token(client, make_user, customer):
    operator = make_user(Role.OPERATOR)
    headers = token_for(client, operator)
    assert client.get("/api/v1/preferences/mine", headers=headers).json["items"] == []
    created = client.post(
        "/api/v1/preferences",
        json={
            "customer_id": customer.id,
            "event_types": ["job_failed"],
            "job_types": ["config_backup"],
            "override_email": "Override@Example.com",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "timezone": "Europe/Paris",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.json
    assert created.json["user_id"] == operator.id and created.json["override_email"] == "override@example.com"
    duplicate = client.post("/api/v1/preferences", json={"customer_id": customer.id}, headers=headers)
    assert duplicate.status_code == 409
    pref_url = f"/api/v1/preferences/{created.json['id']}"
    patched = client.patch(pref_url, json={"min_severity_sms": "high"}, headers=headers)
    assert patched.json["min_severity_sms"] == "high" and patched.json["quiet_hours_start"] == "22:00"
    replaced = client.put(pref_url, json={"enabled_channels": ["email"]}, headers=headers)
    assert replaced.json["enabled_channels"] == ["email"] and replaced.json["quiet_hours_start"] is None
    assert [p["id"] for p in client.get("/api/v1/preferences/mine", headers=headers).json["items"]] == [
        created.json["id"]
    ]
    assert client.delete(pref_url, headers=headers).status_code == 204
    assert db.session.scalar(db.select(db.func.count(NotificationPreference.id))) == 0


def test_only_admin_scope_sets_another_users_preferences(client, make_user, key):
    alice = make_user(Role.OPERATOR)
    bob = make_user(Role.OPERATOR)
    refused = client.post("/api/v1/preferences", json={"user_id": bob.id}, headers=token_for(client, alice))
    assert refused.status_code == 422 and "user_id" in refused.json["error"]["fields"]
    created = client.post("/api/v1/preferences", json={"user_id": bob.id}, headers=key("admin"))
    assert created.status_code == 201
    forbidden = client.patch(
        f"/api/v1/preferences/{created.json['id']}", json={"enable_aggregation": True}, headers=token_for(client, alice)
    )
    assert forbidden.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enabled_channels": ["pigeon"]}, "enabled_channels"),
        ({"min_severity_email": "loud"}, "min_severity_email"),
        ({"event_types": ["party"]}, "event_types"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start"),
        ({"max_notifications_per_hour": 0}, "max_notifications_per_hour"),
        ({"aggregation_window_seconds": -1}, "aggregation_window_seconds"),
        ({"override_email": "nope"}, "override_email"),
    ],
)
def test_preference_validation_is_422(client, make_user, body, field):
    headers = token_for(client, make_user(Role.OPERATOR))
    response = client.post("/api/v1/preferences", json=body, headers=headers)
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]


def test_a_key_without_user_has_no_own_preferences(client, app):
    from webapp.services.integrations import api_keys

    _, plain = api_keys.create_key(name="orphan", scopes=["read"], customer=None, expires_days=None, created_by=None)
    db.session.commit()
    assert client.get("/api/v1/preferences/mine", headers={"X-API-Key": plain}).status_code == 404


def test_ids_past_the_column_range_are_404_not_500(client, key):
    for path in ("/api/v1/events/99999999999999999999", "/api/v1/smtp/9223372036854775808"):
        assert client.get(path, headers=key("admin")).status_code == 404
    assert client.delete("/api/v1/preferences/20626681523002003456", headers=key("admin")).status_code == 404
