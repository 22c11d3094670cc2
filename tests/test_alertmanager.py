"""POST /api/v1/webhooks/alertmanager: the first seed document, end to end."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa

from tests.conftest import load_fixture
from tests.routing_helpers import decided, prefer
from tests.test_outbox import row_ids
from webapp.extensions import db
from webapp.models import Event, Incident, Notification, NotificationStatus, PhoneNumber, utcnow
from webapp.queue import get_queue

URL = "/api/v1/webhooks/alertmanager"
AUTH = {"Authorization": "Bearer test-alert-token"}


def post(client, body, *, headers=AUTH, content_type="application/json"):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(URL, data=data, headers=headers, content_type=content_type)


def counts():
    return (
        db.session.scalar(db.select(db.func.count(Event.id))),
        db.session.scalar(db.select(db.func.count(Notification.id))),
    )


def base36(number: int) -> str:
    """An event's ACK code: its id in base 36 (written out here, independently of the app's code)."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return (base36(number // 36) if number >= 36 else "") + digits[number % 36]


def test_firing_critical_alert_sends_the_system_alert_sms_to_each_admin(client, make_user, route, drain, twilio):
    alice = make_user("admin", phone="+14155550101")
    bob = make_user("admin", phone="+14155550102")
    make_user("operator", phone="+14155550103")  # not an admin: not paged
    make_user("admin", phone="+14155550104", active=False)  # deactivated: not paged

    response = post(client, load_fixture("webhooks/alertmanager_firing.json"))
    assert response.status_code == 200
    assert response.json["new_events"] == 1
    assert response.json["routing"] == "queued"  # who is paged: decided by the routing job, right after
    route()
    assert decided(response.json["event_ids"]) == {"queued": 2}

    drain()

    event_id = response.json["event_ids"][0]
    expected = (
        "\U0001f6a8 CRITICAL ALERT\nDiskFull\nService: postgres\nInstance: db-1:9100\n"
        f"Disk /var/lib/postgresql is 97% full on db-1\nReply ACK {base36(event_id)}"  # the ACK code
    )
    assert sorted((m["To"], m["Body"]) for m in twilio.received) == [
        ("+14155550101", expected),
        ("+14155550102", expected),
    ]
    notifications = db.session.scalars(db.select(Notification).order_by(Notification.user_id)).all()
    assert [(n.user_id, n.status, n.channel) for n in notifications] == [
        (alice.id, NotificationStatus.SENT, "sms"),
        (bob.id, NotificationStatus.SENT, "sms"),
    ]
    sids = {m["sid"] for m in twilio.received}
    assert {n.provider_id for n in notifications} == sids
    assert all(n.sent_at is not None and n.attempts == 1 and not n.simulated for n in notifications)
    event = db.session.scalars(db.select(Event)).one()
    assert (event.title, event.severity, event.status) == ("DiskFull", "critical", "firing")
    assert event.labels["instance"] == "db-1:9100"
    assert event.data["externalURL"] == "http://alertmanager.example.com:9093"
    assert event.data["generatorURL"].startswith("http://prometheus.example.com:9090/graph")


def test_seed_curl_example_without_fingerprint_or_start_time_is_accepted(client, make_user, drain, twilio):
    make_user("admin", phone="+14155550101")
    response = post(client, load_fixture("webhooks/alertmanager_seed_example.json"))
    assert response.status_code == 200
    drain()
    assert [m["Body"] for m in twilio.received] == [
        "\U0001f6a8 CRITICAL ALERT\nTestAlert\nService: test\nInstance: test-1\nTest alert\n"
        f"Reply ACK {base36(response.json['event_ids'][0])}"
    ]


def test_resolved_and_non_critical_alerts_are_recorded_but_page_nobody(client, make_user, route, drain, twilio):
    make_user("admin", phone="+14155550101")
    response = post(client, load_fixture("webhooks/alertmanager_mixed.json"))
    assert response.status_code == 200
    assert response.json["new_events"] == 3
    route()
    assert decided(response.json["event_ids"]) == {"queued": 1}  # only the firing critical ApiDown
    drain()
    assert len(twilio.received) == 1
    assert "ApiDown" in twilio.received[0]["Body"] and "api-2:8080" in twilio.received[0]["Body"]
    statuses = sorted((e.title, e.status, e.severity) for e in db.session.scalars(db.select(Event)))
    assert statuses == [
        ("ApiDown", "firing", "critical"),
        ("ApiDown", "resolved", "critical"),
        ("HighLatency", "firing", "medium"),
    ]


def test_redelivered_payload_notifies_nobody_twice(client, make_user, drain, twilio):
    make_user("admin", phone="+14155550101")
    body = load_fixture("webhooks/alertmanager_firing.json")
    first = post(client, body)
    drain()
    second = post(client, body)  # Alertmanager's repeat_interval resend
    drain()
    assert first.json["new_events"] == 1
    assert second.status_code == 200
    assert second.json["new_events"] == 0 and second.json["duplicates"] == 1
    assert second.json["routing"] == "none"  # nothing new: no routing job
    assert len(twilio.received) == 1
    assert counts() == (1, 1)


def test_same_alert_firing_again_after_it_resolved_is_a_new_incident(client, make_user, drain, twilio):
    make_user("admin", phone="+14155550101")
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    post(client, payload)
    drain()
    resolved = json.loads(json.dumps(payload))
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-27T08:30:00Z"
    post(client, resolved)
    payload["alerts"][0]["startsAt"] = "2026-11-27T09:00:00Z"  # a new firing of the same fingerprint
    response = post(client, payload)
    drain()
    assert response.json["new_events"] == 1
    pages = [m["Body"] for m in twilio.received if "RESOLVED" not in m["Body"]]
    assert len(pages) == 2
    assert [i.state for i in db.session.scalars(db.select(Incident).order_by(Incident.id))] == [
        "resolved",
        "triggered",
    ]


def test_a_second_firing_while_the_incident_is_open_is_a_resend_not_a_page(client, make_user, drain, twilio):
    make_user("admin", phone="+14155550101")
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    post(client, payload)
    payload["alerts"][0]["startsAt"] = "2026-11-27T09:00:00Z"  # no resolution came in between
    response = post(client, payload)
    drain()
    assert response.json["new_events"] == 1
    assert len(twilio.received) == 1
    incident = db.session.scalars(db.select(Incident)).one()
    assert incident.resend_count == 1 and incident.state == "triggered"


def test_admin_without_phone_or_opted_out_gets_a_suppressed_notification_with_reason(
    client, make_user, route, drain, twilio
):
    no_phone = make_user("admin")
    opted_out = make_user("admin", phone="+14155550109")
    number = db.session.scalars(db.select(PhoneNumber).where(PhoneNumber.user_id == opted_out.id)).one()
    number.opted_out, number.opted_out_at, number.opted_out_via = True, utcnow(), "SMS reply STOP"
    db.session.commit()
    paged = make_user("admin", phone="+14155550101")

    response = post(client, load_fixture("webhooks/alertmanager_firing.json"))
    route()
    assert decided(response.json["event_ids"]) == {"queued": 1, "suppressed": 2}
    drain()

    by_user = {n.user_id: n for n in db.session.scalars(db.select(Notification))}
    assert by_user[no_phone.id].status == NotificationStatus.SUPPRESSED
    assert by_user[no_phone.id].reason.startswith("no phone number")
    assert by_user[opted_out.id].status == NotificationStatus.SUPPRESSED
    assert "opted out of SMS" in by_user[opted_out.id].reason
    assert "…0109" in by_user[opted_out.id].reason and "via SMS reply STOP" in by_user[opted_out.id].reason
    assert by_user[paged.id].status == NotificationStatus.SENT
    assert [m["To"] for m in twilio.received] == ["+14155550101"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic dGVzdC1hbGVydC10b2tlbg=="}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_bad_or_missing_token_is_401_and_stores_nothing(client, make_user, headers):
    make_user("admin", phone="+14155550101")
    response = post(client, load_fixture("webhooks/alertmanager_firing.json"), headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert counts() == (0, 0)


def test_malformed_json_is_400(client):
    response = post(client, b'{"alerts": [ {"status": "firing", ')
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    assert "not valid JSON" in response.json["error"]["message"]
    assert counts() == (0, 0)


def test_wrong_content_type_is_415(client):
    response = post(client, load_fixture("webhooks/alertmanager_firing.json"), content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in response.json["error"]["message"]
    assert counts() == (0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"receiver": "x"}, "alerts"),
        ({"alerts": []}, "alerts"),
        ({"alerts": "firing"}, "alerts"),
        ({"alerts": [{"labels": {"alertname": "X"}}]}, "alerts[0].status"),
        ({"alerts": [{"status": "burning", "labels": {}}]}, "alerts[0].status"),
        ({"alerts": [{"status": "firing"}]}, "alerts[0].labels"),
        ({"alerts": [{"status": "firing", "labels": {"severity": 5}}]}, "alerts[0].labels"),
        ({"alerts": [{"status": "firing", "labels": {}, "annotations": ["x"]}]}, "alerts[0].annotations"),
        ({"alerts": [{"status": "firing", "labels": {}, "startsAt": "yesterday"}]}, "alerts[0].startsAt"),
        ({"alerts": [{"status": "firing", "labels": {}, "fingerprint": 42}]}, "alerts[0].fingerprint"),
        ({"alerts": ["not an object"]}, "alerts[0]"),
    ],
)
def test_body_that_is_not_an_alertmanager_payload_is_422_naming_the_field(client, make_user, body, field):
    make_user("admin", phone="+14155550101")
    response = post(client, body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_payload"
    assert field in response.json["error"]["fields"]
    assert counts() == (0, 0)


def test_one_bad_alert_rejects_the_whole_payload(client, make_user):
    make_user("admin", phone="+14155550101")
    payload = json.loads(load_fixture("webhooks/alertmanager_mixed.json"))
    payload["alerts"][2]["status"] = "exploded"
    response = post(client, payload)
    assert response.status_code == 422
    assert list(response.json["error"]["fields"]) == ["alerts[2].status"]
    assert counts() == (0, 0)


@pytest.mark.parametrize("body", [b"[]", b'"alerts"', b"null", b"42"])
def test_json_that_is_not_an_object_is_400(client, body):
    response = post(client, body)
    assert response.status_code == 400
    assert "JSON object" in response.json["error"]["message"]


def test_oversized_body_is_413_before_parsing(client, app):
    huge = b'{"alerts": [' + b" " * (app.config["MAX_CONTENT_LENGTH"] + 10) + b"]}"
    response = post(client, huge)
    assert response.status_code == 413
    assert response.is_json
    assert counts() == (0, 0)


def test_get_is_405_json(client):
    response = client.get(URL, headers=AUTH)
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"


def test_unknown_api_path_is_json_404(client):
    response = client.post("/api/v1/webhooks/nagios", headers=AUTH, json={})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_nul_character_is_400_not_a_database_error(client, make_user):
    make_user("admin", phone="+14155550101")
    body = b'{"alerts": [{"status": "firing", "labels": {"alertname": "Disk\\u0000Full", "severity": "critical"}}]}'
    response = post(client, body)
    assert response.status_code == 400
    assert "NUL" in response.json["error"]["message"]
    assert counts() == (0, 0)


def test_many_alerts_in_one_group_each_page_once(client, make_user, drain, twilio):
    admin = make_user("admin", phone="+14155550101")
    # 25 pages to one person in a minute: the storm guard (on by default) would hold all but 5 for a summary;
    # this test is about each alert paging once, so the guard is off for it
    prefer(admin, enabled_channels=["sms"], storm_guard=False)
    alerts = [
        {"status": "firing", "labels": {"alertname": f"Alert{i}", "severity": "critical"}, "fingerprint": f"f{i}"}
        for i in range(25)
    ]
    response = post(client, {"alerts": alerts})
    assert response.json["new_events"] == 25
    drain()
    assert sorted(m["Body"].split("\n")[1] for m in twilio.received) == sorted(f"Alert{i}" for i in range(25))


def test_deeply_nested_body_is_400(client):
    response = post(client, b'{"alerts": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert response.status_code == 400
    assert counts() == (0, 0)


def test_a_large_group_is_stored_in_batches(client):
    alerts = [
        {"status": "firing", "labels": {"alertname": f"Alert{i}", "severity": "warning"}, "fingerprint": f"f{i}"}
        for i in range(3000)
    ]
    response = post(client, {"alerts": alerts})
    assert response.status_code == 200
    assert response.json["new_events"] == 3000
    assert post(client, {"alerts": alerts}).json["duplicates"] == 3000
    assert counts() == (3000, 0)


def test_concurrent_redeliveries_store_one_event_and_page_once(app, make_user, drain, twilio):
    """The unique constraint decides between simultaneous posts, not a read before a write."""
    make_user("admin", phone="+14155550101")
    body = load_fixture("webhooks/alertmanager_firing.json")
    barrier = threading.Barrier(4)
    answers = []

    def deliver_once():
        client = app.test_client()
        barrier.wait()
        answers.append(post(client, body).json)

    threads = [threading.Thread(target=deliver_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drain()
    assert sorted(a["new_events"] for a in answers) == [0, 0, 0, 1]
    assert sum(a["duplicates"] for a in answers) == 3
    assert counts() == (1, 1)
    assert len(twilio.received) == 1


def test_dashboard_lists_the_open_incidents(client, login_as, route):
    login_as("viewer")
    post(client, load_fixture("webhooks/alertmanager_mixed.json"))  # ApiDown on api-3 is already resolved
    route()
    page = client.get("/").text
    firing_section = page.split('id="open-incidents"')[1].split("</section>")[0]
    assert "ApiDown" in firing_section and "HighLatency" in firing_section
    assert firing_section.count('class="incident-row') == 2  # two firing; the resolved alert is not listed

    resolved = json.loads(load_fixture("webhooks/alertmanager_mixed.json"))
    resolved["alerts"] = [dict(resolved["alerts"][1], status="resolved", endsAt="2026-11-26T04:00:00Z")]
    post(client, resolved)
    route()
    firing_section = client.get("/").text.split('id="open-incidents"')[1].split("</section>")[0]
    assert "HighLatency" not in firing_section and "ApiDown" in firing_section


class Statements:
    """The SQL statements and commits the app sends while in this block (a SQLAlchemy event listener)."""

    def __enter__(self):
        self.statements, self.commits = [], 0
        sa.event.listen(db.engine, "before_cursor_execute", self._statement)
        sa.event.listen(db.engine, "commit", self._commit)
        return self

    def __exit__(self, *_exc):
        sa.event.remove(db.engine, "before_cursor_execute", self._statement)
        sa.event.remove(db.engine, "commit", self._commit)

    def _statement(self, _conn, _cursor, text, *_args):
        self.statements.append(text.split()[0].upper())

    def _commit(self, _conn):
        self.commits += 1


def statements_for_one_alert(client, route, fingerprint: str) -> tuple[list[str], list[str]]:
    """The statements of the webhook request, then those of its routing job."""
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    payload["alerts"][0]["fingerprint"] = fingerprint
    with Statements() as request:
        assert post(client, payload).status_code == 200
    with Statements() as job:
        assert route() == 1
    return request.statements, job.statements


def test_paging_more_admins_runs_no_more_queries(client, make_user, route):
    """Issue 19: the request's statements do not grow with the people to page (1 admin, then 30), nor do
    its routing job's."""
    make_user("admin", phone="+14155550100")
    one_request, one_job = statements_for_one_alert(client, route, "f-one")
    for i in range(29):
        make_user("admin", phone=f"+141555502{i:02d}")
    many_request, many_job = statements_for_one_alert(client, route, "f-many")
    assert many_request == one_request == ["INSERT"]  # the event, deduplicated by the database
    assert many_job == one_job
    assert db.session.scalar(db.select(db.func.count(Notification.id))) == 1 + 30


def test_an_alert_is_one_insert_and_commit_then_one_routing_job(app, client, make_user, route):
    """Answering an alert costs one durable write (issue 19's ingest benchmark): the event's INSERT and its
    commit, and one routing job handed over after it. The job is one transaction: it claims the event, opens
    its incident (coming back whole from its INSERT) with its "triggered" entry, reads people with their
    phones, preferences and templates, inserts the notifications in one statement, and hands them over."""
    for i in range(3):
        make_user("admin", phone=f"+1415555010{i}")
    with Statements() as request:
        response = post(client, load_fixture("webhooks/alertmanager_firing.json"))
    assert response.status_code == 200 and response.json["routing"] == "queued"
    assert request.statements == ["INSERT"] and request.commits == 1
    routing = get_queue(app).queues["routing"]
    assert [job.func_name for job in routing.get_jobs()] == ["webapp.jobs.route_events"]  # one job per request
    assert db.session.scalars(db.select(Notification)).all() == []  # nobody decided yet

    with Statements() as job:
        assert route() == 1
    assert job.commits == 1  # claim, incident and notifications together
    # the claim (UPDATE ... RETURNING), the incident, its entry, the notifications; the event's incident link
    assert job.statements.count("INSERT") == 3 and job.statements.count("UPDATE") == 2, job.statements
    assert len(job.statements) <= 11, job.statements  # + open incidents, people, preferences, templates, endpoints
    rows = db.session.scalars(db.select(Notification)).all()
    assert [n.status for n in rows] == [NotificationStatus.PENDING] * 3  # a worker claims them from pending
    # critical SMS: on the page lane (issue 19), in one deliver_batch job
    assert sorted(i for job in get_queue(app).queues["pages"].jobs for i in row_ids(job)) == sorted(n.id for n in rows)
