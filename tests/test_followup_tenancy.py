"""Webhook follow-ups stay within the source's customer: another customer's PagerDuty source cannot acknowledge
or resolve a ticket by naming its incident id (GitHub merges: tests/test_webhooks_github.py)."""

from __future__ import annotations

from tests.test_webhooks_pagerduty import SECRET, payload, post
from webapp.extensions import db
from webapp.models import Event, Ticket, TicketStatus
from webapp.services.integrations import webhook_sources

OTHER_SECRET = "globex-pagerduty-secret-42"


def test_another_customers_pagerduty_source_cannot_touch_the_incidents_ticket(client, customer, make_customer, route):
    webhook_sources.create(name="pd-acme", kind="pagerduty", customer=customer, secret=SECRET, create_tickets=True)
    globex = make_customer("Globex")
    webhook_sources.create(
        name="pd-globex", kind="pagerduty", customer=globex, secret=OTHER_SECRET, create_tickets=True
    )
    db.session.commit()
    opened = post(client, payload(), SECRET)
    assert opened.status_code == 200 and route() == 1  # the routing job opens the ticket
    ticket = db.session.scalars(db.select(Ticket).where(Ticket.customer_id == customer.id)).one()
    assert ticket.key == "OPS-1"
    timeline = [(entry.kind, entry.body) for entry in ticket.timeline]

    for kind in ("incident.acknowledged", "incident.priority_updated", "incident.resolved"):
        answer = post(client, payload(kind, event_id=f"globex-{kind}", priority={"summary": "P5"}), OTHER_SECRET)
        assert answer.status_code == 200, answer.json
        assert answer.json["source"] == "pd-globex" and route() == 1
        [event] = db.session.scalars(db.select(Event).where(Event.id.in_(answer.json["event_ids"])))
        assert event.ticket_id is None  # no ticket touched

    db.session.expire_all()
    ticket = db.session.scalars(db.select(Ticket).where(Ticket.customer_id == customer.id)).one()
    assert ticket.status == TicketStatus.OPEN and ticket.acknowledged_at is None and ticket.priority == "urgent"
    assert [(entry.kind, entry.body) for entry in ticket.timeline] == timeline
    assert db.session.scalars(db.select(Ticket).where(Ticket.customer_id == globex.id)).all() == []
