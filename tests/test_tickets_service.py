"""The tickets service: every change leaves a line on the timeline."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import Priority, Role, TicketStatus
from webapp.services.tickets import tickets


def test_ticket_life_is_written_to_its_timeline(app, customer, make_user):
    operator = make_user(Role.OPERATOR, name="Olga", customers=[customer])
    ticket = tickets.create(customer=customer, title="Backups failing", actor=operator, source="api")
    tickets.assign(ticket, operator, actor=operator)
    tickets.set_priority(ticket, Priority.URGENT, actor=operator)
    tickets.comment(ticket, "Looking into it", actor=operator)
    tickets.acknowledge(ticket, by=operator, via="sms")
    assert not tickets.acknowledge(ticket, by=operator)
    tickets.change_status(ticket, TicketStatus.RESOLVED, actor=operator)
    db.session.commit()
    db.session.expire_all()
    assert [e.body for e in ticket.timeline] == [
        "Ticket created from api",
        "Assigned to Olga",
        "Priority normal → urgent",
        "Looking into it",
        "Acknowledged by Olga (sms)",
        "Status open → resolved",
    ]
    assert ticket.resolved_at is not None and ticket.acknowledged_by_id == operator.id
