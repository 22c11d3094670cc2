"""Tickets pages: filters, search, SLA states, the timeline, and every change through the service."""

from __future__ import annotations

from datetime import timedelta

from tests.ops_helpers import count_statements, make_event, make_notification
from webapp.extensions import db
from webapp.models import Channel, Priority, Ticket, TicketStatus, TimelineEntry, utcnow


def test_operator_creates_a_ticket_and_its_timeline_starts(client, login_as, customer):
    operator = login_as("operator", name="Olga Operator")
    answer = client.post(
        "/tickets/new",
        data={"customer": customer.id, "title": "Backups failing", "priority": "high", "assignee": operator.id},
    )
    ticket = db.session.scalars(db.select(Ticket)).one()
    assert answer.status_code == 302 and answer.headers["Location"] == f"/tickets/{ticket.id}"
    assert ticket.priority == Priority.HIGH and ticket.assignee_id == operator.id
    page = client.get(f"/tickets/{ticket.id}").text
    assert f"OPS-{ticket.id}" in page and "Ticket created from the admin pages" in page and "Olga Operator" in page


def test_create_form_keeps_input_and_says_what_is_wrong(client, login_as, customer):
    login_as("operator")
    page = client.post("/tickets/new", data={"customer": customer.id, "title": "", "description": "kept text"})
    assert page.status_code == 200
    assert "Give the ticket a title." in page.text and "kept text" in page.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0


def test_operator_cannot_create_for_another_customer(client, login_as, make_customer):
    other = make_customer("Globex")
    login_as("operator")
    page = client.post("/tickets/new", data={"customer": other.id, "title": "Sneaky"})
    assert "Not a valid choice" in page.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0


def test_viewer_reads_but_cannot_change(client, login_as, customer, make_ticket):
    login_as("viewer")
    ticket = make_ticket(customer=customer, title="Disk full on db-1")
    page = client.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200 and "Disk full on db-1" in page.text
    assert "Acknowledge" not in page.text and "New ticket" not in client.get("/tickets").text
    assert client.get("/tickets/new").status_code == 403
    for action in ("ack", "resolve", "comment", "edit", "assign-to-me"):
        assert client.post(f"/tickets/{ticket.id}/{action}", data={"body": "x"}).status_code == 403
    db.session.refresh(ticket)
    assert ticket.acknowledged_at is None and ticket.status == TicketStatus.OPEN


def test_other_customers_ticket_is_404(client, login_as, make_customer, make_ticket):
    other = make_customer("Globex")
    login_as("operator")
    ticket = make_ticket(customer=other, title="Not yours")
    assert client.get(f"/tickets/{ticket.id}").status_code == 404
    assert client.post(f"/tickets/{ticket.id}/ack").status_code == 404
    assert "Not yours" not in client.get("/tickets").text


def test_ack_assign_comment_edit_and_resolve_show_on_the_timeline(client, login_as, customer, make_ticket):
    operator = login_as("operator", name="Olga Operator")
    ticket = make_ticket(customer=customer)
    assert client.post(f"/tickets/{ticket.id}/ack").status_code == 302
    client.post(f"/tickets/{ticket.id}/assign-to-me")
    client.post(f"/tickets/{ticket.id}/comment", data={"body": "Looking at the disk now"})
    client.post(f"/tickets/{ticket.id}/edit", data={"priority": "urgent", "status": "open", "assignee": operator.id})
    client.post(f"/tickets/{ticket.id}/resolve")
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.status == TicketStatus.RESOLVED and ticket.acknowledged_by_id == operator.id
    assert ticket.assignee_id == operator.id and ticket.priority == Priority.URGENT
    page = client.get(f"/tickets/{ticket.id}").text
    for text in (
        "Acknowledged by Olga Operator (web)",
        "Assigned to Olga Operator",
        "Looking at the disk now",
        "Priority normal → urgent",
        "Status open → resolved",
    ):
        assert text in page
    assert client.post(f"/tickets/{ticket.id}/ack", follow_redirects=True).text.count("already acknowledged") == 1


def test_empty_comment_is_refused_next_to_the_field(client, login_as, customer, make_ticket):
    login_as("operator")
    ticket = make_ticket(customer=customer)
    page = client.post(f"/tickets/{ticket.id}/comment", data={"body": "  "})
    assert page.status_code == 422 and "Write something first." in page.text
    assert db.session.scalar(db.select(db.func.count()).where(TimelineEntry.kind == "comment")) == 0


def test_edit_refuses_a_bad_status(client, login_as, customer, make_ticket):
    login_as("operator")
    ticket = make_ticket(customer=customer)
    page = client.post(f"/tickets/{ticket.id}/edit", data={"priority": "urgent", "status": "exploded"})
    assert page.status_code == 422 and "Not a valid choice" in page.text
    db.session.refresh(ticket)
    assert ticket.priority == Priority.NORMAL


def test_filters_at_risk_breached_and_search(client, login_as, customer, make_ticket, make_user):
    login_as("viewer")
    now = utcnow()
    bob = make_user("operator", name="Bob Oncall")
    make_ticket(customer=customer, title="Calm one", due_at=now + timedelta(hours=5), warn_at=now + timedelta(hours=4))
    make_ticket(
        customer=customer, title="Risky one", due_at=now + timedelta(hours=1), warn_at=now - timedelta(minutes=5)
    )
    make_ticket(customer=customer, title="Late one", due_at=now - timedelta(hours=1), warn_at=now - timedelta(hours=2))
    make_ticket(
        customer=customer,
        title="Urgent thing",
        priority=Priority.URGENT,
        assignee_id=bob.id,
        status=TicketStatus.PENDING,
    )
    at_risk = client.get("/tickets?sla=at_risk").text
    assert "Risky one" in at_risk and "Calm one" not in at_risk and "Late one" not in at_risk
    breached = client.get("/tickets?sla=breached").text
    assert "Late one" in breached and "Risky one" not in breached
    assert "Urgent thing" in client.get("/tickets?priority=urgent").text
    assert "Calm one" not in client.get("/tickets?priority=urgent").text
    assert "Urgent thing" in client.get(f"/tickets?assignee={bob.id}").text
    assert "Urgent thing" not in client.get("/tickets?assignee=0").text
    assert "Urgent thing" in client.get("/tickets?status=pending").text
    assert "Risky one" in client.get("/tickets?q=risky").text and "Calm one" not in client.get("/tickets?q=risky").text
    late = db.session.scalars(db.select(Ticket).where(Ticket.title == "Late one")).one()
    assert "Late one" in client.get(f"/tickets?q=OPS-{late.id}").text


def test_list_runs_a_bounded_number_of_statements(client, login_as, customer, make_ticket, app):
    login_as("admin")
    for i in range(3):
        make_ticket(customer=customer, title=f"T{i}")
    with count_statements() as few:
        client.get("/tickets")
    for i in range(30):
        make_ticket(customer=customer, title=f"U{i}")
    with count_statements() as many:
        page = client.get("/tickets")
    assert page.text.count('href="/tickets/') >= 33
    assert len(many) <= len(few) + 1  # + the signed-in user, cached in the first request's session


def test_detail_shows_notifications_sent_for_the_ticket_and_a_countdown(client, login_as, customer, make_ticket):
    user = login_as("operator")
    ticket = make_ticket(customer=customer, due_at=utcnow() + timedelta(hours=2))
    event = make_event(customer, title="SLA warning", event_type="sla_warning", ticket_id=ticket.id)
    n = make_notification(customer=customer, user=user, event=event, channel=Channel.EMAIL)
    db.session.add(TimelineEntry(ticket_id=ticket.id, kind="pull_request", body="Linked PR #42: fix disk alert"))
    db.session.commit()
    page = client.get(f"/tickets/{ticket.id}").text
    assert f'href="/deliveries/{n.id}"' in page and "email to" in page
    assert "Linked PR #42" in page
    assert 'class="sla-countdown"' in page and "data-due=" in page and "js/sla-countdown.js" in page


def test_filters_offer_only_people_of_the_readers_customers(client, login_as, make_customer, make_user):
    other = make_customer("Globex")
    make_user("operator", name="Gina Globex", customers=[other])
    make_user("operator", name="Andy Acme")
    login_as("viewer")
    tickets_page, log_page = client.get("/tickets").text, client.get("/deliveries").text
    assert "Andy Acme" in tickets_page and "Andy Acme" in log_page
    assert "Gina Globex" not in tickets_page and "Gina Globex" not in log_page


def test_an_event_told_to_many_is_one_timeline_line(client, login_as, customer, make_ticket, make_user):
    user = login_as("operator")
    ticket = make_ticket(customer=customer)
    event = make_event(customer, title="SLA breach", event_type="sla_breach", ticket_id=ticket.id)
    people = [user] + [make_user("operator", name=f"Op {n}") for n in range(6)]
    for person in people:
        for channel in (Channel.EMAIL, Channel.SMS):
            make_notification(customer=customer, user=person, event=event, channel=channel)
    db.session.commit()
    page = client.get(f"/tickets/{ticket.id}").text
    assert page.count('class="timeline-notification"') == 1
    assert "14 notifications: email sent ×7, sms sent ×7" in page and "and 2 more" in page
    assert f'href="/events/{event.id}"' in page
