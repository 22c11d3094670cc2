"""Escalation through the levels until someone acknowledges; two sweeps at once warn once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from webapp.extensions import db
from webapp.models import Event, EventStatus, Incident, Notification, Priority, Role, Severity, SlaPolicy, Ticket
from webapp.services.events import ingest
from webapp.services.inbound import acks
from webapp.services.tickets import sla, tickets
from webapp.sources.normalised import NormalisedEvent


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def escalating(customer):
    for priority in (Priority.NORMAL, Priority.URGENT):
        db.session.add(
            SlaPolicy(
                customer_id=customer.id,
                priority=priority,
                resolution_minutes=60,
                escalation_minutes=30,
                escalation_interval_minutes=15,
                escalation_limit=2,
            )
        )
    db.session.commit()


@pytest.fixture
def admins(make_user, customer):
    mine = make_user(Role.ADMIN, name="Customer Admin", phone="+14155550101", customers=[customer])
    other = make_user(Role.ADMIN, name="Head Admin", phone="+14155550102", customers=[])
    return mine, other


def notified(event_source: str = "escalation") -> list[tuple[str, list[int]]]:
    events = db.session.scalars(db.select(Event).where(Event.source == event_source).order_by(Event.id)).all()
    return [
        (
            event.labels["escalation_level"],
            sorted(  # the users reached, whatever channels their preferences chose
                set(db.session.scalars(db.select(Notification.user_id).where(Notification.event_id == event.id)))
            ),
        )
        for event in events
    ]


def test_breached_ticket_escalates_two_levels_then_stops_at_the_limit(app, customer, escalating, admins):
    mine, other = admins
    ticket = tickets.create(customer=customer, title="Payroll down", now=at("2026-04-01T08:00:00"))
    db.session.commit()
    assert sla.check_sla(now=at("2026-04-01T09:00:00")).breached == [ticket.id]
    assert sla.check_sla(now=at("2026-04-01T09:29:00")).escalated == []
    assert sla.check_sla(now=at("2026-04-01T09:30:00")).escalated == [f"{ticket.key} level 1"]
    assert sla.check_sla(now=at("2026-04-01T09:45:00")).escalated == [f"{ticket.key} level 2"]
    assert sla.check_sla(now=at("2026-04-01T12:00:00")).escalated == []  # the limit is two levels
    db.session.commit()
    assert notified() == [("1", [mine.id]), ("2", [mine.id, other.id])]


def test_acknowledging_the_ticket_stops_escalation_at_once(app, customer, escalating, admins):
    mine, _ = admins
    ticket = tickets.create(customer=customer, title="Payroll down", now=at("2026-04-01T08:00:00"))
    sla.check_sla(now=at("2026-04-01T09:00:00"))
    sla.check_sla(now=at("2026-04-01T09:30:00"))
    tickets.acknowledge(ticket, by=mine, via="web", now=at("2026-04-01T09:31:00"))
    db.session.commit()
    assert sla.check_sla(now=at("2026-04-01T10:30:00")).escalated == []
    assert notified() == [("1", [mine.id])]


def test_unacknowledged_alert_escalates_until_acknowledged(app, customer, escalating, admins):
    mine, other = admins
    item = NormalisedEvent(
        source="alertmanager",
        dedup_key="fp-1",
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="DiskFull on db-1",
        customer_id=customer.id,
    )
    result = ingest.ingest([item], now=at("2026-04-01T08:00:00"))
    db.session.commit()
    [incident] = result.opened
    assert incident.next_escalation_at == at("2026-04-01T08:30:00")  # the urgent policy's delay
    assert sla.check_sla(now=at("2026-04-01T08:30:00")).escalated == [f"incident {incident.id} level 1"]
    db.session.commit()
    acks.acknowledge(db.session.get(Incident, incident.id), by=mine, via="web", now=at("2026-04-01T08:35:00"))
    db.session.commit()
    assert sla.check_sla(now=at("2026-04-01T09:00:00")).escalated == []
    assert notified() == [("1", [mine.id])]
    assert other.id not in notified()[0][1]
    step = db.session.scalar(db.select(Event).where(Event.source == "escalation"))
    assert step.incident_id == incident.id  # the step is part of the incident's story


def test_resolved_alert_does_not_escalate(app, customer, escalating, admins):
    firing = NormalisedEvent(
        source="alertmanager",
        dedup_key="fp-2",
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="x",
        customer_id=customer.id,
    )
    ingest.ingest([firing], now=at("2026-04-01T08:00:00"))
    resolved = NormalisedEvent(
        source="alertmanager",
        dedup_key="fp-2",
        status=EventStatus.RESOLVED,
        severity=Severity.CRITICAL,
        title="x",
        customer_id=customer.id,
    )
    ingest.ingest([resolved], now=at("2026-04-01T08:10:00"))
    db.session.commit()
    assert sla.check_sla(now=at("2026-04-01T08:30:00")).escalated == []


def test_two_concurrent_sweeps_warn_each_ticket_once(app, customer, make_app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrent sweeps need PostgreSQL (run with DATABASE_URL)")
    db.session.add(SlaPolicy(customer_id=customer.id, priority=Priority.NORMAL, resolution_minutes=120))
    db.session.commit()
    created = [tickets.create(customer=customer, title=f"T{n}", now=at("2026-04-01T08:00:00")) for n in range(40)]
    db.session.commit()
    expected = sorted(t.id for t in created)
    barrier = threading.Barrier(2)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def sweep():
        try:
            with app.app_context():  # its own session, its own connection
                db.session.execute(db.select(1))
                barrier.wait(timeout=10)
                outcome = sla.check_sla(now=at("2026-04-01T09:30:00"))
                db.session.commit()
                results.append(outcome.warned)
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results[0] + results[1]) == expected  # every ticket won by exactly one sweep
    db.session.expire_all()
    warnings = db.session.scalars(db.select(Event.ticket_id).where(Event.event_type == "sla_warning")).all()
    assert sorted(warnings) == expected
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket).where(Ticket.warned_at.is_(None))) == 0


def test_acknowledging_by_the_api_stops_escalation(app, client, customer, escalating, admins):
    from webapp.api.access import new_key
    from webapp.models import ApiKey
    from webapp.security import hash_api_key

    mine, _ = admins
    key, prefix = new_key()
    db.session.add(
        ApiKey(name="ops", prefix=prefix, key_hash=hash_api_key(key), scopes=["write"], created_by_id=mine.id)
    )
    ticket = tickets.create(customer=customer, title="Payroll down", now=at("2026-04-01T08:00:00"))
    sla.check_sla(now=at("2026-04-01T09:00:00"))
    db.session.commit()
    response = client.post(f"/api/v1/tickets/{ticket.id}/ack", headers={"X-API-Key": key})
    assert response.status_code == 200 and response.json["acknowledged_now"] is True
    assert response.json["acknowledged_at"] is not None
    assert client.post(f"/api/v1/tickets/{ticket.id}/ack", headers={"X-API-Key": key}).json["acknowledged_now"] is False
    db.session.expire_all()
    assert sla.check_sla(now=at("2026-04-01T10:00:00")).escalated == []
    assert notified() == []


# --- stopped by an ACK by SMS (the Twilio inbound webhook, signed as Twilio signs it) -------------

PUBLIC = "https://opsrelay.example.com"
INBOUND = "/api/v1/webhooks/twilio/inbound"


def sms_reply(app, client, sender: str, body: str) -> str:
    from twilio.request_validator import RequestValidator

    from tests.conftest import TWILIO_TOKEN

    app.config["PUBLIC_BASE_URL"] = PUBLIC
    params = {"From": sender, "Body": body}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + INBOUND, params)
    response = client.post(INBOUND, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    return response.text


def test_ack_by_sms_of_the_escalation_code_stops_the_alert(app, client, customer, escalating, admins):
    mine, other = admins
    item = NormalisedEvent(
        source="alertmanager",
        dedup_key="fp-sms",
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="DiskFull on db-1",
        customer_id=customer.id,
    )
    [incident] = ingest.ingest([item], now=at("2026-04-01T08:00:00")).opened
    db.session.commit()
    assert sla.check_sla(now=at("2026-04-01T08:30:00")).escalated == [f"incident {incident.id} level 1"]
    db.session.commit()
    step = db.session.scalar(db.select(Event).where(Event.source == "escalation"))
    assert step.incident_id == incident.id and acks.code_for(step) == str(incident.id)
    reply = sms_reply(app, client, "+14155550101", f"ACK {acks.code_for(step)}")  # the customer admin's phone
    assert "Acknowledged" in reply
    db.session.expire_all()
    assert sla.check_sla(now=at("2026-04-01T08:45:00")).escalated == []  # level 2 never comes
    db.session.commit()
    assert db.session.get(Incident, incident.id).acknowledged_by_id == mine.id
    assert notified() == [("1", [mine.id])]


def test_ack_by_sms_of_the_ticket_key_stops_its_escalation(app, client, customer, escalating, admins):
    mine, _ = admins
    ticket = tickets.create(customer=customer, title="Payroll down", now=at("2026-04-01T08:00:00"))
    sla.check_sla(now=at("2026-04-01T09:00:00"))
    sla.check_sla(now=at("2026-04-01T09:30:00"))
    db.session.commit()
    assert f"Acknowledged {ticket.key}" in sms_reply(app, client, "+14155550101", f"ACK {ticket.key}")
    db.session.expire_all()
    assert sla.check_sla(now=at("2026-04-01T09:45:00")).escalated == []
    assert db.session.get(Ticket, ticket.id).acknowledged_by_id == mine.id
    assert notified() == [("1", [mine.id])]
