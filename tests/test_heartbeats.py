"""Heartbeats: a missed check-in opens an alert through the real periodic job, a check-in resolves it; the
check-in URL takes the heartbeat's own token or an API key; the admin page creates, shows and pauses."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import Event, EventStatus, Heartbeat, Incident, Notification, utcnow
from webapp.queue import Scheduler, get_queue
from webapp.services.integrations import api_keys


def run_periodic_jobs(app, drain) -> None:
    """What the scheduler does every tick: queue the periodic jobs that are due; a real worker runs them."""
    scheduler = get_queue(app).scheduler()
    scheduler.connection.delete(Scheduler.LAST_RUN)  # every periodic job is due
    try:
        assert scheduler.tick(), "this test's scheduler holds the lock"
    finally:
        scheduler.release()
    drain()


def time_passes(heartbeat_id: int, seconds: int) -> None:
    """As if `seconds` went by: the heartbeat's deadline moves that far back."""
    heartbeat = db.session.get(Heartbeat, heartbeat_id)
    heartbeat.due_at -= timedelta(seconds=seconds)
    db.session.commit()


def create_on_the_page(client, customer, name="nightly-backup", **fields) -> tuple[Heartbeat, str]:
    data = {
        "customer": customer.id,
        "name": name,
        "interval_seconds": 3600,
        "grace_seconds": 300,
        "severity": "critical",
    }
    page = client.post("/heartbeats", data={**data, **fields})
    assert page.status_code == 200, page.text
    token = re.search(r'<p class="secret-once mb-1"><code>(hb_[^<]+)</code>', page.text).group(1)
    heartbeat = db.session.scalar(sa.select(Heartbeat).where(Heartbeat.name == name))
    return heartbeat, token


def check_in(client, name: str, **headers):
    return client.post(f"/api/v1/heartbeats/{name}", headers=headers)


def heartbeat_events() -> list[Event]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Event).where(Event.source == "heartbeat").order_by(Event.id)))


def test_missed_heartbeat_opens_an_alert_and_the_next_check_in_resolves_it(
    app, client, login_as, make_user, customer, drain, twilio
):
    make_user("admin", phone="+14155550101")
    login_as("operator")
    heartbeat, token = create_on_the_page(client, customer)
    assert heartbeat.state == "waiting" and heartbeat.token_hash != token  # stored hashed

    answer = check_in(client, "nightly-backup", Authorization=f"Bearer {token}")
    assert answer.status_code == 200 and answer.json["resolved"] is False
    run_periodic_jobs(app, drain)
    assert heartbeat_events() == []  # on time: nothing

    time_passes(heartbeat.id, 3600 + 301)
    run_periodic_jobs(app, drain)
    [missed] = heartbeat_events()
    assert missed.status == EventStatus.FIRING and missed.title == "Heartbeat nightly-backup missed"
    assert missed.customer_id == customer.id and missed.labels["heartbeat"] == "nightly-backup"
    sms = db.session.scalars(sa.select(Notification).where(Notification.event_id == missed.id)).all()
    assert [n.status for n in sms if n.recipient == "+14155550101"] == ["sent"]  # the admin is paged
    assert [m["To"] for m in twilio.received] == ["+14155550101"]
    assert "nightly-backup" in client.get("/heartbeats").text and ">late<" in client.get("/heartbeats").text

    run_periodic_jobs(app, drain)  # still late: the same alert, not a second one
    assert len(heartbeat_events()) == 1

    key, plain = api_keys.create_key(
        name="cron", scopes=["write"], customer=customer, expires_days=None, created_by=None
    )
    db.session.commit()
    back = check_in(client, "nightly-backup", **{"X-API-Key": plain})
    assert back.status_code == 200 and back.json["resolved"] is True
    missed_again, resolved = heartbeat_events()
    assert resolved.status == EventStatus.RESOLVED and resolved.dedup_key == missed.dedup_key
    [incident] = db.session.scalars(sa.select(Incident)).all()
    assert incident.key == f"heartbeat-{heartbeat.id}" and incident.state == "resolved"
    assert {missed.incident_id, resolved.incident_id} == {incident.id}
    db.session.refresh(heartbeat)
    assert heartbeat.state == "up" and heartbeat.missed_at is None

    # Late again later: a new alert (a new incident), not a duplicate of the first.
    time_passes(heartbeat.id, 3600 + 301)
    run_periodic_jobs(app, drain)
    events = heartbeat_events()
    assert len(events) == 3 and events[2].status == EventStatus.FIRING and events[2].dedup_key != missed.dedup_key
    incidents = db.session.scalars(sa.select(Incident).order_by(Incident.id)).all()
    assert [i.state for i in incidents] == ["resolved", "triggered"]  # a new incident, the old one stays closed


def test_a_paused_heartbeat_opens_no_alert(app, client, login_as, customer, drain):
    login_as("operator")
    heartbeat, _ = create_on_the_page(client, customer)
    assert client.post(f"/heartbeats/{heartbeat.id}/pause").status_code == 302
    time_passes(heartbeat.id, 10_000)
    run_periodic_jobs(app, drain)
    assert heartbeat_events() == []
    assert ">paused<" in client.get("/heartbeats").text
    client.post(f"/heartbeats/{heartbeat.id}/resume")
    db.session.refresh(heartbeat)
    assert heartbeat.state == "waiting" and heartbeat.due_at > utcnow() + timedelta(seconds=3600)


def test_check_in_refuses_wrong_credentials_and_other_tenants(client, login_as, customer, make_customer):
    login_as("operator")
    heartbeat, token = create_on_the_page(client, customer)
    other_beat, other_token = create_on_the_page(client, customer, name="hourly-sync")
    assert check_in(client, "nightly-backup").status_code == 401
    assert check_in(client, "nightly-backup", Authorization="Bearer hb_not-a-token").status_code == 401
    assert check_in(client, "nightly-backup", Authorization=f"Bearer {other_token}").status_code == 401
    _, read_only = api_keys.create_key(name="r", scopes=["read"], customer=customer, expires_days=None, created_by=None)
    _, elsewhere = api_keys.create_key(
        name="w", scopes=["write"], customer=make_customer("Elsewhere"), expires_days=None, created_by=None
    )
    db.session.commit()
    assert check_in(client, "nightly-backup", **{"X-API-Key": read_only}).status_code == 403
    assert check_in(client, "nightly-backup", **{"X-API-Key": elsewhere}).status_code == 404
    db.session.refresh(heartbeat)
    assert heartbeat.last_checkin_at is None  # nothing of the refused calls was recorded


def test_the_page_refuses_a_bad_heartbeat_and_viewers_only_look(client, login_as, customer, make_user):
    login_as("operator")
    page = client.post(
        "/heartbeats", data={"customer": customer.id, "name": "no spaces", "interval_seconds": 5, "grace_seconds": 0}
    )
    assert page.status_code == 422
    assert "Letters, digits, dots, dashes and underscores only" in page.text
    assert "Number must be between 30 and 2678400." in page.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Heartbeat)) == 0
    create_on_the_page(client, customer)
    duplicate = client.post(
        "/heartbeats",
        data={"customer": customer.id, "name": "nightly-backup", "interval_seconds": 60, "grace_seconds": 0},
    )
    assert duplicate.status_code == 422 and "This customer has a heartbeat of that name." in duplicate.text

    client.post("/logout")
    viewer = make_user("viewer")
    client.post("/login", data={"email": viewer.email, "password": PASSWORD})
    listing = client.get("/heartbeats")
    assert "nightly-backup" in listing.text and "New heartbeat" not in listing.text and "Pause" not in listing.text


@pytest.mark.parametrize("name", ["nightly-backup"])
def test_api_lists_heartbeats_with_their_state(client, login_as, customer, name):
    login_as("operator")
    create_on_the_page(client, customer, name=name)
    _, plain = api_keys.create_key(name="r", scopes=["read"], customer=customer, expires_days=None, created_by=None)
    db.session.commit()
    [item] = client.get("/api/v1/heartbeats", headers={"X-API-Key": plain}).json["items"]
    assert item["name"] == name and item["state"] == "waiting" and item["interval_seconds"] == 3600
    assert "token" not in str(item).lower().replace("token_prefix", "")
