"""Incidents through whole lives, with real payload shapes: one page per incident, one all-clear, and every
acknowledgement path stopping escalation for everyone."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests import test_webhooks_generic as generic_hook
from tests import test_webhooks_pagerduty as pd
from tests.conftest import PASSWORD, load_fixture, run_routing_jobs
from tests.test_sla_escalation import sms_reply
from webapp.extensions import db
from webapp.models import (
    ApiKey,
    Channel,
    Event,
    Incident,
    IncidentEntry,
    IncidentState,
    Notification,
    Priority,
    Role,
    SlaPolicy,
    Ticket,
    TicketStatus,
    WebhookEndpoint,
)
from webapp.security import encrypt_secret, hash_api_key
from webapp.services.events import escalation
from webapp.services.inbound import acks
from webapp.services.integrations import webhook_sources
from webapp.services.integrations.api_keys import new_key

AM_URL = "/api/v1/webhooks/alertmanager"
AM_AUTH = {"Authorization": "Bearer test-alert-token"}


def alertmanager(client, body: dict):
    """Post to the webhook, then let its routing job run (incidents, pages), as a worker does right after."""
    response = client.post(AM_URL, data=json.dumps(body), headers=AM_AUTH, content_type="application/json")
    assert response.status_code in (200, 201), response.text
    run_routing_jobs(client.application)
    return response.json


def am_body(status: str, starts_at: str, *, ends_at: str = "0001-01-01T00:00:00Z") -> dict:
    body = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    body["status"] = body["alerts"][0]["status"] = status
    body["alerts"][0]["startsAt"] = starts_at
    body["alerts"][0]["endsAt"] = ends_at
    return body


def sms_bodies(twilio) -> list[str]:
    return [m["Body"] for m in twilio.received]


def test_alertmanager_life_two_incidents_one_page_and_one_all_clear_each(client, make_user, drain, twilio):
    """A real Alertmanager writes startsAt with nanoseconds while firing and whole seconds once resolved."""
    admin = make_user(Role.ADMIN, phone="+14155550101")
    other = make_user(Role.ADMIN, phone="+14155550102")
    firing = am_body("firing", "2026-11-26T03:12:00.123456789Z")
    assert alertmanager(client, firing)["new_events"] == 1
    drain()
    assert alertmanager(client, firing)["duplicates"] == 1  # repeat_interval: the same bytes again
    drain()
    resolved = am_body("resolved", "2026-11-26T03:12:00Z", ends_at="2026-11-26T03:40:00Z")
    assert alertmanager(client, resolved)["new_events"] == 1
    drain()
    again = am_body("firing", "2026-11-26T05:00:00.5Z")
    alertmanager(client, again)
    drain()
    alertmanager(client, am_body("resolved", "2026-11-26T05:00:00Z", ends_at="2026-11-26T05:20:00Z"))
    drain()

    first, second = db.session.scalars(db.select(Incident).order_by(Incident.id)).all()
    assert (first.state, second.state) == (IncidentState.RESOLVED, IncidentState.RESOLVED)
    assert first.resend_count == 1 and second.resend_count == 0
    assert first.key == second.key == "c6f1a2b3d4e5f607"
    assert first.resolved_via == "alertmanager" and first.resolved_by_id is None
    for user in (admin, other):
        texts = [
            n.body
            for n in db.session.scalars(
                db.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
            )
        ]
        assert len(texts) == 4, texts  # page, all-clear, page, all-clear
        page1, clear1, page2, clear2 = texts
        assert page1.startswith("\U0001f6a8 CRITICAL ALERT\nDiskFull\nService: postgres\nInstance: db-1:9100")
        assert page1.endswith(f"Reply ACK {first.id}") and page2.endswith(f"Reply ACK {second.id}")
        assert "RESOLVED" in clear1 and "Reply ACK" not in clear1 and "Reply ACK" not in clear2
    # explain no longer says they were "not notified when this alert fired"
    resolved_event = db.session.scalars(
        db.select(Event).where(Event.status == "resolved", Event.incident_id == first.id)
    ).one()
    assert all(n.status in ("sent", "delivered") for n in resolved_event.notifications)


def test_pagerduty_life_one_incident_one_page_and_the_ticket_follows(client, customer, make_user, drain, twilio):
    make_user(Role.ADMIN, phone="+14155550101", customers=[customer])
    webhook_sources.create(name="pd-acme", kind="pagerduty", customer=customer, secret=pd.SECRET, create_tickets=True)
    db.session.commit()
    for event_type, changes in (
        ("incident.triggered", {}),
        ("incident.priority_updated", {"priority": {"summary": "P2"}}),
        ("incident.acknowledged", {}),
        ("incident.resolved", {}),
    ):
        response = pd.post(client, pd.payload(event_type, **changes), pd.SECRET)
        assert response.status_code in (200, 201), response.text
        drain()
    [incident] = db.session.scalars(db.select(Incident)).all()
    assert incident.state == IncidentState.RESOLVED
    assert incident.severity == "high"  # P1 → P2 followed; nobody paged for it
    assert incident.acknowledged_via == "pagerduty (Tenex Engineer)"
    pages = [b for b in sms_bodies(twilio) if "Reply ACK" in b]
    assert len(pages) == 1, sms_bodies(twilio)
    assert "Instance:" not in pages[0]  # no empty label lines
    assert pages[0].count("Checkout latency above 2 s") == 1  # the title once
    ticket = db.session.get(Ticket, incident.ticket_id)
    assert ticket.status == TicketStatus.RESOLVED and ticket.acknowledged_at is not None
    kinds = [e.kind for e in db.session.scalars(db.select(IncidentEntry).order_by(IncidentEntry.id))]
    assert kinds == ["triggered", "severity", "acknowledged", "resolved"]


def test_a_warning_says_its_severity_and_a_truncated_group_says_what_was_left_out(client, make_user, drain, twilio):
    make_user(Role.ADMIN, phone="+14155550101")
    body = am_body("firing", "2026-11-26T03:12:00.1Z")
    body["truncatedAlerts"] = 7
    body["alerts"][0]["labels"] = {"alertname": "DiskFull", "severity": "critical"}
    body["alerts"][0]["annotations"] = {}
    alertmanager(client, body)
    drain()
    [text] = sms_bodies(twilio)
    assert "Service:" not in text and "Instance:" not in text
    assert "+7 more alerts in this group were left out by Alertmanager" in text


# --- every acknowledgement path stops escalation --------------------------------------------------------------


@pytest.fixture
def escalating(customer):
    db.session.add(
        SlaPolicy(
            customer_id=customer.id,
            priority=Priority.URGENT,
            resolution_minutes=60,
            escalation_minutes=30,
            escalation_interval_minutes=15,
            escalation_limit=2,
        )
    )
    db.session.commit()


@pytest.fixture
def paged(app, client, customer, make_user, escalating, drain):
    """A critical job failure from a generic source of the customer, with a ticket; two admins paged."""
    alice = make_user(Role.ADMIN, name="Alice", phone="+14155550101", customers=[customer])
    bob = make_user(Role.ADMIN, name="Bob", phone="+14155550102", customers=[customer])
    webhook_sources.create(
        name="automation", kind="generic", customer=customer, secret=generic_hook.SECRET, create_tickets=True
    )
    db.session.commit()
    report = {**generic_hook.JOB, "severity": "critical", "dedup_key": "backup-2026-12-01", "create_ticket": True}
    response = generic_hook.post(client, report)
    assert response.status_code in (200, 201), response.text
    drain()
    incident = db.session.scalars(db.select(Incident)).one()
    assert incident.ticket_id is not None and incident.next_escalation_at is not None
    return incident, alice, bob


def escalation_steps() -> int:
    return db.session.scalar(db.select(db.func.count(Event.id)).where(Event.source == "escalation"))


def assert_stopped(incident: Incident, bob) -> None:
    db.session.expire_all()
    result = escalation.escalate(now=datetime.now(UTC) + timedelta(hours=3))
    db.session.commit()
    assert result.escalated == [] and escalation_steps() == 0
    incident = db.session.get(Incident, incident.id)
    assert incident.state != IncidentState.TRIGGERED and incident.next_escalation_at is None
    told = db.session.scalars(
        db.select(Notification.body)
        .join(Event, Event.id == Notification.event_id)
        .where(
            Notification.user_id == bob.id, Event.source.in_(("ack", "resolve")), Notification.channel == Channel.SMS
        )
    ).all()
    assert told, "the other paged admin is told on their channel"


def test_without_an_ack_the_incident_escalates(paged):
    incident, _, _ = paged
    result = escalation.escalate(now=datetime.now(UTC) + timedelta(hours=3))
    db.session.commit()
    assert result.escalated == [f"incident {incident.id} level 1"]


def test_ack_by_sms_code(app, client, paged):
    incident, alice, bob = paged
    assert f"Acknowledged #{incident.id}" in sms_reply(app, client, "+14155550101", f"ACK {incident.id}")
    assert_stopped(incident, bob)


def test_ack_of_the_linked_ticket_on_its_page(client, paged):
    incident, alice, bob = paged
    response = login_and_post(client, alice, f"/tickets/{incident.ticket_id}/ack")
    assert response.status_code == 302
    assert db.session.get(Ticket, incident.ticket_id).acknowledged_by_id == alice.id
    assert_stopped(incident, bob)


def test_resolving_the_linked_ticket_resolves_the_incident(client, paged):
    incident, alice, bob = paged
    response = login_and_post(client, alice, f"/tickets/{incident.ticket_id}/resolve")
    assert response.status_code == 302
    assert_stopped(incident, bob)
    assert db.session.get(Incident, incident.id).state == IncidentState.RESOLVED


def test_ack_of_the_linked_ticket_through_the_api(client, paged):
    incident, alice, bob = paged
    response = client.post(f"/api/v1/tickets/{incident.ticket_id}/ack", headers=api_key_of(alice))
    assert response.status_code == 200, response.text
    assert_stopped(incident, bob)


def test_ack_by_the_senders_own_resolution(client, paged, route):
    incident, alice, bob = paged
    report = {**generic_hook.JOB, "severity": "critical", "dedup_key": "backup-2026-12-01", "status": "resolved"}
    assert generic_hook.post(client, report).status_code in (200, 201)
    route()
    db.session.expire_all()
    assert db.session.get(Ticket, incident.ticket_id).status == TicketStatus.RESOLVED  # follows its incident
    incident = db.session.get(Incident, incident.id)
    assert incident.state == IncidentState.RESOLVED
    result = escalation.escalate(now=datetime.now(UTC) + timedelta(hours=3))
    assert result.escalated == []


def test_an_ack_through_one_path_is_an_ack_everywhere(paged):
    incident, alice, bob = paged
    assert acks.acknowledge(incident, by=bob, via="web").acknowledged
    db.session.commit()
    assert not acks.acknowledge(incident, by=alice, via="SMS").acknowledged
    assert db.session.get(Ticket, incident.ticket_id).acknowledged_by_id == bob.id


def test_outgoing_webhooks_say_incident_triggered_acknowledged_resolved(client, customer, make_user, drain):
    hook = WebhookEndpoint(name="Status page", url="http://127.0.0.1:9/hook", secret_encrypted=encrypt_secret("s"))
    db.session.add(hook)
    db.session.commit()
    alice = make_user(Role.ADMIN, name="Alice", customers=[customer])
    alertmanager(client, am_body("firing", "2026-11-26T03:12:00.123Z"))
    incident = db.session.scalars(db.select(Incident)).one()
    acks.acknowledge(incident, by=alice, via="web")
    db.session.commit()
    alertmanager(client, am_body("resolved", "2026-11-26T03:12:00Z", ends_at="2026-11-26T03:40:00Z"))
    rows = db.session.scalars(
        db.select(Notification).where(Notification.channel == Channel.WEBHOOK).order_by(Notification.id)
    ).all()
    assert [r.subject for r in rows] == ["incident.triggered", "incident.acknowledged", "incident.resolved"]
    acked = json.loads(rows[1].body)["incident"]
    assert (acked["state"], acked["acknowledged_by"], acked["acknowledged_via"]) == ("acknowledged", "Alice", "web")


def test_successful_jobs_open_no_incident_and_no_ticket(client, customer, app, route):
    webhook_sources.create(
        name="automation", kind="generic", customer=customer, secret=generic_hook.SECRET, create_tickets=True
    )
    db.session.commit()
    report = copy.deepcopy(generic_hook.JOB) | {"event_type": "job_success", "create_ticket": True}
    response = generic_hook.post(client, report)
    assert response.status_code in (200, 201), response.text
    assert route() == 1  # routed, tickets follow-up included
    assert db.session.scalar(db.select(db.func.count(Incident.id))) == 0
    assert db.session.scalar(db.select(db.func.count(Ticket.id))) == 0


# --- helpers -------------------------------------------------------------------------------------------------


def login_and_post(client, user, url: str):
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    return client.post(url)  # CSRF is checked by tests/test_csrf*.py; the test config turns it off


def api_key_of(user) -> dict:
    key, prefix = new_key()
    db.session.add(ApiKey(name="t", prefix=prefix, key_hash=hash_api_key(key), scopes=["write"], created_by_id=user.id))
    db.session.commit()
    return {"X-API-Key": key}


def test_a_failed_jobs_email_links_to_the_job_the_sender_named(app):
    from webapp.models import MessageTemplate
    from webapp.services.messages import templates

    event = Event(
        id=7,
        source="generic",
        event_type="job_failed",
        status="firing",
        severity="high",
        title="Nightly config backup failed",
        body="3 devices timed out",
        data={"job_url": "https://automation.example.com/jobs/8812"},
    )
    template = db.session.scalars(
        db.select(MessageTemplate).where(
            MessageTemplate.name == "email_job_failed", MessageTemplate.customer_id.is_(None)
        )
    ).one()
    context = templates.event_context(event)
    assert "Job logs: https://automation.example.com/jobs/8812" in templates.render_text(template.body_text, context)
    html = templates.render_html(template.body_html, context)
    assert '<a href="https://automation.example.com/jobs/8812">Job logs</a>' in html


def test_incident_transitions_are_counted_in_the_metrics(client, make_user, drain):
    from prometheus_client import REGISTRY as _unused  # noqa: F401  (the app's own registry is read below)

    from webapp import metrics

    def count(transition: str) -> float:
        return metrics.incidents.labels(transition=transition)._value.get()

    before = {t: count(t) for t in ("opened", "acknowledged", "resolved")}
    alice = make_user(Role.ADMIN, name="Alice")
    alertmanager(client, am_body("firing", "2026-11-26T03:12:00.123Z"))
    incident = db.session.scalars(db.select(Incident)).one()
    acks.acknowledge(incident, by=alice, via="web")
    db.session.commit()
    alertmanager(client, am_body("resolved", "2026-11-26T03:12:00Z", ends_at="2026-11-26T03:40:00Z"))
    assert {t: count(t) - before[t] for t in before} == {"opened": 1, "acknowledged": 1, "resolved": 1}
