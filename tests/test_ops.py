"""Health, readiness and metrics."""

from __future__ import annotations

from tests.conftest import load_fixture
from webapp.extensions import db
from webapp.models import Notification


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_checks_database_and_queue(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": True, "queue": True}}


def test_readyz_is_503_when_the_queue_is_down(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["queue"] is False


def test_metrics_count_notifications_by_channel_and_status(client, make_user, drain):
    make_user("admin", phone="+14155550101")
    make_user("admin")
    client.post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers={"Authorization": "Bearer test-alert-token"},
        content_type="application/json",
    )
    drain()
    text = client.get("/metrics").text
    assert 'opsrelay_notifications{channel="sms",status="sent"} 1' in text
    assert 'opsrelay_notifications{channel="sms",status="suppressed"} 1' in text
    assert "opsrelay_queue_up 1" in text


def test_metrics_can_require_a_token(make_app):
    app = make_app(METRICS_TOKEN="scrape-me")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200 and "opsrelay_queue_up" in ok.text


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_login_failures_and_retries(client, make_user, drain, twilio):
    failures = "opsrelay_login_failures_total"
    retries = 'opsrelay_delivery_retries_total{channel="sms"}'
    before = client.get("/metrics").text
    make_user("admin", phone="+14155550101")
    client.post("/login", data={"email": "nobody@example.com", "password": "wrong"})
    twilio.fail_next("+14155550101", 20429)  # Twilio's "too many requests": retried
    client.post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers={"Authorization": "Bearer test-alert-token"},
        content_type="application/json",
    )
    drain()
    after = client.get("/metrics").text
    assert _sample(after, failures) - _sample(before, failures) == 1
    assert _sample(after, retries) - _sample(before, retries) == 1


def test_metrics_show_the_oldest_job_of_each_queue(app, client):
    from webapp.queue import get_queue

    get_queue(app).enqueue_many("webapp.jobs.deliver", [(999_999,)])
    text = client.get("/metrics").text
    assert _sample(text, 'opsrelay_queue_jobs{queue="deliveries"}') == 1
    assert _sample(text, 'opsrelay_queue_oldest_job_age_seconds{queue="deliveries"}') >= 0
    assert 'opsrelay_queue_failed_jobs{queue="periodic"} 0.0' in text


def test_metrics_count_sms_segments_by_country(client, make_user, drain):
    segments = 'opsrelay_sms_segments_total{country="US"}'
    before = _sample(client.get("/metrics").text, segments)
    make_user("admin", phone="+14155550101")
    client.post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers={"Authorization": "Bearer test-alert-token"},
        content_type="application/json",
    )
    drain()
    [sms] = db.session.scalars(db.select(Notification).where(Notification.status == "sent")).all()
    assert sms.sms_segments == 2  # the emoji makes it UCS-2: 70 characters a segment
    assert _sample(client.get("/metrics").text, segments) - before == 2
