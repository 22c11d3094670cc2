"""Tickets that follow incoming events: opened for each new event when a sender asks (generic senders, the
events API), and kept in step with a PagerDuty incident (opened on trigger where the source says so,
acknowledged, resolved and re-prioritised as PagerDuty reports).

A source's follow-ups stay within its customer: an incident id names a ticket only among the tickets of
the source's own customer, so one customer's source can never touch another customer's ticket.
"""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import Customer, Event, EventStatus, Ticket, TicketStatus, WebhookSource
from webapp.services.events.ingest import IngestResult
from webapp.services.tickets import tickets
from webapp.sources import pagerduty


def open_for_each(result: IngestResult, *, customer_id: int, source_label: str) -> dict:
    """A ticket for each newly stored event (a redelivery opens none). Returns {"tickets": [keys]}."""
    opened = []
    customer = db.session.get(Customer, customer_id)
    for event in result.events:
        ticket = tickets.create(
            customer=customer,
            title=event.title[:200],
            description=event.body,
            priority=event.severity.ticket_priority,
            source=source_label,
        )
        event.ticket_id = ticket.id
        opened.append(ticket.key)
    return {"tickets": opened}


def follow_pagerduty(result: IngestResult, *, source: WebhookSource) -> dict:
    """Tickets for the new PagerDuty events: created on trigger (where the source says so), updated after."""
    touched = []
    for event in result.events:
        incident_id = event.data["incident_id"]
        ticket = _incident_ticket(incident_id, customer_id=source.customer_id)
        if event.status == EventStatus.FIRING and ticket is None:
            if not (source.create_tickets and source.customer_id):
                continue
            ticket = tickets.create(
                customer=db.session.get(Customer, source.customer_id),
                title=event.title[:200],
                description=f"{event.body}\n{event.data.get('html_url') or ''}".strip(),
                priority=event.severity.ticket_priority,
                source="PagerDuty",
            )
        elif ticket is None:
            continue
        elif event.status == EventStatus.ACKNOWLEDGED:
            ticket.acknowledged_at = ticket.acknowledged_at or event.created_at
            tickets.add_timeline(ticket, "acknowledged", event.body, data={"pagerduty": incident_id})
        elif event.status == EventStatus.RESOLVED:
            tickets.change_status(ticket, TicketStatus.RESOLVED)
        elif event.status == EventStatus.INFO:
            tickets.set_priority(ticket, event.severity.ticket_priority)
        event.ticket_id = ticket.id
        touched.append(ticket.key)
    return {"tickets": touched}


def _incident_ticket(incident_id: str, *, customer_id: int | None) -> Ticket | None:
    """The ticket an earlier event of this incident opened, among the tickets of the source's customer."""
    if customer_id is None:
        return None
    ticket_id = db.session.scalar(
        db.select(Event.ticket_id)
        .join(Ticket, Ticket.id == Event.ticket_id)
        .where(Event.source == pagerduty.SOURCE, Event.dedup_key == incident_id, Ticket.customer_id == customer_id)
        .limit(1)
    )
    return db.session.get(Ticket, ticket_id) if ticket_id else None
