"""Issue 19: a sender's request stores its events and commits; one routing job pages, fans out and opens
tickets. The job runs even if the queue was down at the commit (the recovery sweep hands the unrouted events
over again), and two runs of it route once."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from tests.conftest import load_fixture, run_routing_jobs
from tests.fault_services import free_port
from tests.test_routing_api import key_for  # noqa: F401  (a fixture: an API key of an admin without a phone)
from webapp import jobs
from webapp.extensions import db
from webapp.models import Event, Incident, Notification, NotificationStatus, utcnow
from webapp.outbox import ROUTE_JOB
from webapp.queue import ROUTING, get_queue
from webapp.services.events import ingest

URL = "/api/v1/webhooks/alertmanager"
AUTH = {"Authorization": "Bearer test-alert-token"}


def alert(fingerprint: str = "f-1", status: str = "firing") -> dict:
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    payload["status"] = payload["alerts"][0]["status"] = status
    payload["alerts"][0]["fingerprint"] = fingerprint
    if status == "resolved":
        payload["alerts"][0]["endsAt"] = "2026-11-26T04:00:00Z"
    return payload


def sms_rows() -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Notification).where(Notification.channel == "sms")))


def routing_jobs(app) -> list:
    return [job for job in get_queue(app).queues[ROUTING].get_jobs() if job.func_name == ROUTE_JOB]


def test_the_routing_job_runs_after_a_redis_outage_at_commit(app, make_app, make_user, drain, twilio):
    """The app's Redis is down (nothing listens on its port) when the webhook commits: the sender still gets
    its 200 and the event is kept, unrouted. The recovery sweep hands it to the routing job; the admins are
    paged once."""
    make_user("admin", phone="+14155550101")
    make_user("admin", phone="+14155550102")
    down = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", TWILIO_API_BASE_URL=twilio.base_url)
    response = down.test_client().post(URL, json=alert(), headers=AUTH)
    assert response.status_code == 200, response.json
    assert (response.json["new_events"], response.json["routing"]) == (1, "queued")
    event = db.session.get(Event, response.json["event_ids"][0])
    assert event.routed_at is None and event.incident_id is None  # stored, waiting for its job
    assert routing_jobs(app) == [] and sms_rows() == []  # the job never reached a queue

    assert jobs.recover_notifications()["rerouted"] == 0  # within the grace its own job may still come
    later = utcnow() + timedelta(seconds=31)
    assert jobs.recover_notifications(now=later)["rerouted"] == 1
    assert len(routing_jobs(app)) == 1
    drain()  # the routing job, then the SMS it queued
    event = db.session.get(Event, event.id)
    assert event.routed_at is not None and event.incident_id is not None
    assert sorted(m["To"] for m in twilio.received) == ["+14155550101", "+14155550102"]
    assert {n.status for n in sms_rows()} == {NotificationStatus.SENT}
    assert jobs.recover_notifications(now=later + timedelta(minutes=5))["rerouted"] == 0  # nothing left


def test_after_an_outage_the_sweep_hands_over_unrouted_events_without_the_grace(app, make_app, make_user):
    make_user("admin", phone="+14155550101")
    down = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert down.test_client().post(URL, json=alert(), headers=AUTH).status_code == 200
    assert jobs.recover_notifications(after_outage=True)["rerouted"] == 1


def test_two_runs_of_the_routing_job_route_once(app, client, make_user, route, drain, twilio):
    make_user("admin", phone="+14155550101")
    make_user("admin", phone="+14155550102")
    response = client.post(URL, json=alert(), headers=AUTH)
    [job] = routing_jobs(app)
    assert job.args == (response.json["event_ids"],)
    assert jobs.route_events(*job.args) == "routed 1 of 1 events"
    assert jobs.route_events(*job.args) == "routed 0 of 1 events"  # claimed already: nothing to do
    assert len(sms_rows()) == 2
    assert jobs.recover_notifications(now=utcnow() + timedelta(minutes=1))["rerouted"] == 0
    drain()  # the queued copy of the job runs too, as after a sweep that raced the job
    assert len(twilio.received) == 2 and len(sms_rows()) == 2
    assert db.session.scalars(db.select(Incident)).one().state == "triggered"


def test_a_redelivery_routes_nothing_and_a_resolution_sends_the_all_clear(app, client, make_user, route, drain, twilio):
    make_user("admin", phone="+14155550101")
    assert client.post(URL, json=alert(), headers=AUTH).json["routing"] == "queued"
    route()
    again = client.post(URL, json=alert(), headers=AUTH)
    assert (again.json["duplicates"], again.json["routing"]) == (1, "none")
    assert routing_jobs(app) == []
    drain()
    assert len(twilio.received) == 1
    assert db.session.scalars(db.select(Incident)).one().resend_count == 1  # counted by the request itself
    resolved = client.post(URL, json=alert(status="resolved"), headers=AUTH)
    assert resolved.json["routing"] == "queued"
    drain()
    assert len(twilio.received) == 2 and "RESOLVED" in twilio.received[1]["Body"]
    assert db.session.scalars(db.select(Incident)).one().state == "resolved"


def test_the_events_api_takes_the_same_path(app, client, make_user, key_for, route):  # noqa: F811
    make_user("admin", phone="+14155550101")
    answer = client.post("/api/v1/events", json={"title": "Backups late", "severity": "critical"}, headers=key_for())
    assert answer.status_code == 201, answer.json
    assert answer.json["routing"] == "queued" and len(routing_jobs(app)) == 1
    assert sms_rows() == []
    assert route() == 1
    assert sorted(str(n.status) for n in sms_rows()) == ["pending", "suppressed"]  # the key's owner has no phone


def test_the_event_page_says_when_its_routing_is_still_to_come(client, login_as, route):
    login_as("admin", phone="+14155550101")
    event_id = client.post(URL, json=alert(), headers=AUTH).json["event_ids"][0]
    assert "Not routed yet" in client.get(f"/events/{event_id}").text
    route()
    page = client.get(f"/events/{event_id}").text
    assert "Not routed yet" not in page
    rows = page.split('id="event-notifications"')[1].split("</table>")[0]
    assert rows.count("<tr><td>") == 1 and "sms" in rows  # the admin's page, decided by the job


def test_in_a_storm_one_routing_job_routes_the_backlog(app, client, make_user, drain, twilio):
    """Requests came faster than routing: the first request's job waits on the queue, the later requests ride
    on it, and it takes the waiting events along (one transaction). Each alert still pages each admin once; a
    resolution and the next firing of the same alert in one backlog meet the incident in order."""
    make_user("admin", phone="+14155550101")
    for n in range(3):  # within the storm guard's 5 pages
        assert client.post(URL, json=alert(f"f-{n}"), headers=AUTH).status_code == 200
    client.post(URL, json=alert("f-0", status="resolved"), headers=AUTH)
    refired = alert("f-0")
    refired["alerts"][0]["startsAt"] = "2026-11-26T05:00:00Z"
    client.post(URL, json=refired, headers=AUTH)
    [first] = routing_jobs(app)  # the later requests rode on the waiting job (no job of their own)
    assert jobs.route_events(*first.args) == "routed 5 of 1 events"
    drain()
    rows = sorted(sms_rows(), key=lambda n: n.event_id)
    # f-0's first page was still waiting when its resolution was routed: suppressed, with the reason
    assert [(n.status, n.reason) for n in rows][0] == (
        NotificationStatus.SUPPRESSED,
        "resolved by alertmanager before it went out",
    )
    assert [n.status for n in rows[1:]] == [NotificationStatus.SENT] * 3  # f-1, f-2, and f-0 fired again
    assert len(twilio.received) == 3
    states = db.session.execute(db.select(Incident.key, Incident.state).order_by(Incident.id)).all()
    assert [tuple(s) for s in states] == [
        ("f-0", "resolved"),
        *[(f"f-{n}", "triggered") for n in (1, 2)],
        ("f-0", "triggered"),
    ]


def test_two_routing_jobs_racing_over_one_backlog_route_each_event_once(app, client, make_app, make_user):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the race is proven on PostgreSQL (run with DATABASE_URL)")
    make_user("admin", phone="+14155550101")
    make_user("admin", phone="+14155550102")
    for n in range(60):
        client.post(URL, json=alert(f"race-{n}"), headers=AUTH)
    ids = [job.args[0] for job in routing_jobs(app)]
    workers = [make_app() for _ in range(2)]
    start = threading.Barrier(len(workers))
    routed: list[str] = []
    errors: list[BaseException] = []

    def work(worker_app, mine) -> None:
        try:
            with worker_app.app_context():
                start.wait()
                routed.extend(jobs.route_events(event_ids) for event_ids in mine)
                db.session.remove()
                db.engine.dispose()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w, ids[i::2])) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(int(r.split()[1]) for r in routed) == 60  # every event routed, by one job only
    rows = sms_rows()
    assert len(rows) == 120 and len({(n.user_id, n.event_id) for n in rows}) == 120  # each admin once per alert
    assert db.session.scalar(db.select(db.func.count()).select_from(Incident)) == 60


def test_a_request_after_the_waiting_job_started_gets_a_job_of_its_own(app, client, make_user, monkeypatch):
    """Riding on a waiting job lasts only until it starts (it claims from then on); a job that took a whole
    backlog queues the next one for the rest, so nothing waits for the recovery sweep."""
    make_user("admin", phone="+14155550101")
    monkeypatch.setattr(ingest, "BACKLOG", 2)
    for n in range(2):
        client.post(URL, json=alert(f"f-{n}"), headers=AUTH)
    [first] = routing_jobs(app)
    get_queue(app).queues[ROUTING].remove(first)
    get_queue(app).routing_started()  # as the job does when it starts, before its claim
    later = [client.post(URL, json=alert(f"f-{n}"), headers=AUTH).json["event_ids"][0] for n in range(2, 5)]
    [second] = routing_jobs(app)  # f-2's, on which f-3 and f-4 rode
    assert second.args == ([later[0]],)
    assert jobs.route_events(*first.args) == "routed 2 of 1 events"  # f-0 and f-1: a whole backlog
    [_, follow_on] = routing_jobs(app)
    assert follow_on.args == ([],)  # queued by the first job for the rest
    while run_routing_jobs(app):  # f-2's job and the follow-ons, as a worker runs them
        pass
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).where(Event.routed_at.is_(None))) == 0
    assert len({n.event_id for n in sms_rows()}) == 5  # every alert paged the admin once
