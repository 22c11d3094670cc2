"""Tickets that follow incidents: opened for each new incident when a sender asks (generic senders, the
events API) and resolved with it, and kept in step with a PagerDuty incident (opened on trigger where the
source says so, acknowledged, resolved and re-prioritised as PagerDuty reports).

A source's follow-ups stay within its customer: incidents are per (source, customer, key), and a ticket is
touched only among the tickets of the source's own customer.
"""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import Customer, Event, EventStatus, Incident, Ticket, TicketStatus, WebhookSource
from webapp.services.events.ingest import IngestResult
from webapp.services.tickets import tickets


def open_for_each(result: IngestResult, *, customer_id: int, source_label: str) -> dict:
    """A ticket for each incident these events opened (a resend, a report or a redelivery opens none); a
    resolution resolves the ticket its incident opened. Returns {"tickets": [keys]}."""
    touched = []
    customer = db.session.get(Customer, customer_id)
    for incident in result.opened:
        ticket = tickets.create(
            customer=customer,
            title=incident.title[:200],
            description=incident.summary,
            priority=incident.severity.ticket_priority,
            source=source_label,
        )
        _link(result, incident, ticket)
        touched.append(ticket.key)
    touched += _resolve_tickets(result)
    return {"tickets": touched}


def follow_pagerduty(result: IngestResult, *, source: WebhookSource) -> dict:
    """Tickets for the PagerDuty incidents: opened on trigger (where the source says so), then acknowledged,
    resolved and re-prioritised as PagerDuty reports. Only the source's own customer's tickets are touched."""
    touched = []
    if source.create_tickets and source.customer_id:
        customer = db.session.get(Customer, source.customer_id)
        for incident in result.opened:
            ticket = tickets.create(
                customer=customer,
                title=incident.title[:200],
                description=f"{incident.summary}\n{(incident.data or {}).get('html_url') or ''}".strip(),
                priority=incident.severity.ticket_priority,
                source="PagerDuty",
            )
            _link(result, incident, ticket)
            touched.append(ticket.key)
    for event in result.events:
        ticket = _ticket_of(event, customer_id=source.customer_id)
        if ticket is None or event.status == EventStatus.FIRING:
            continue
        event.ticket_id = ticket.id
        incident_id = event.data["incident_id"]
        if event.status == EventStatus.ACKNOWLEDGED:
            ticket.acknowledged_at = ticket.acknowledged_at or event.created_at
            ticket.next_escalation_at = None
            tickets.add_timeline(ticket, "acknowledged", event.body, data={"pagerduty": incident_id})
        elif event.status == EventStatus.RESOLVED:
            tickets.change_status(ticket, TicketStatus.RESOLVED)
        elif event.status == EventStatus.INFO:
            tickets.set_priority(ticket, event.severity.ticket_priority)
        touched.append(ticket.key)
    return {"tickets": touched}


def _link(result: IngestResult, incident: Incident, ticket: Ticket) -> None:
    incident.ticket_id = ticket.id
    for event in result.events:
        if event.incident_id == incident.id:
            event.ticket_id = ticket.id


def _ticket_of(event: Event, *, customer_id: int | None) -> Ticket | None:
    """The ticket of the event's incident, among the tickets of the source's own customer."""
    if event.incident_id is None or customer_id is None:
        return None
    return db.session.scalar(
        db.select(Ticket)
        .join(Incident, Incident.ticket_id == Ticket.id)
        .where(Incident.id == event.incident_id, Ticket.customer_id == customer_id)
    )


def _resolve_tickets(result: IngestResult) -> list[str]:
    keys = []
    for event in result.events:
        if event.status != EventStatus.RESOLVED or event.incident_id is None:
            continue
        incident = db.session.get(Incident, event.incident_id)
        ticket = db.session.get(Ticket, incident.ticket_id) if incident and incident.ticket_id else None
        if ticket is not None and ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            tickets.change_status(ticket, TicketStatus.RESOLVED)
            event.ticket_id = ticket.id
            keys.append(ticket.key)
    return keys
