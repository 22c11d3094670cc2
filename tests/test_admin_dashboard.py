"""The dashboard: tickets at risk and breached, failed deliveries, worker and queue state, charts."""

from __future__ import annotations

from datetime import timedelta

from tests.ops_helpers import make_event, make_notification
from webapp import outbox
from webapp.extensions import db
from webapp.models import Channel, NotificationStatus, utcnow
from webapp.queue import get_queue

S = NotificationStatus


def section(page: str, heading: str) -> str:
    return page.split(f"<h2>{heading}</h2>")[1].split("</section>")[0]


def test_tickets_at_risk_and_breached_are_listed_with_counts(client, login_as, customer, make_ticket):
    login_as("viewer")
    now = utcnow()
    make_ticket(customer=customer, title="Fine", due_at=now + timedelta(hours=5), warn_at=now + timedelta(hours=4))
    make_ticket(customer=customer, title="Risky", due_at=now + timedelta(hours=1), warn_at=now - timedelta(minutes=1))
    make_ticket(customer=customer, title="Late", due_at=now - timedelta(hours=1), breached_at=now - timedelta(hours=1))
    page = client.get("/").text
    attention = section(page, "Tickets needing attention").split("Newest open tickets")[0]
    assert "Risky" in attention and "Late" in attention and "Fine" not in attention
    assert attention.index("Late") < attention.index("Risky")  # by deadline
    assert '<span class="num">1</span><span>tickets breached</span>' in page
    assert '<span class="num">1</span><span>tickets at risk</span>' in page


def test_another_customers_tickets_and_failures_stay_hidden(client, login_as, make_customer, make_ticket):
    other = make_customer("Globex")
    login_as("operator")
    make_ticket(customer=other, title="Their late one", due_at=utcnow() - timedelta(hours=1))
    make_notification(customer=other, status=S.FAILED, error_message="their failure", event=make_event(other))
    make_ticket(customer=other, title="Their open one")
    page = client.get("/").text
    assert "Their open one" not in page and "(0 open)" in page
    assert "Their late one" not in page and "their failure" not in page


def test_failed_deliveries_of_the_last_day(client, login_as, customer):
    login_as("admin")
    make_notification(
        customer=customer,
        status=S.FAILED,
        error_code="21211",
        error_message="invalid To",
        event=make_event(customer, title="A"),
    )
    make_notification(
        customer=customer,
        status=S.FAILED,
        error_message="old failure",
        created_at=utcnow() - timedelta(days=2),
        event=make_event(customer, title="B"),
    )
    failed = section(client.get("/").text, "Failed deliveries (24 h)")
    assert "invalid To" in failed and "old failure" not in failed


def test_worker_state_and_oldest_queued_job(client, login_as, customer, app):
    login_as("admin")
    n = make_notification(customer=customer, status=S.PENDING, event=make_event(customer))
    outbox.deliver([n.id])  # no worker runs in tests: the job waits
    db.session.commit()
    page = client.get("/").text
    queue = get_queue(app)
    assert ("embedded worker" if queue.embedded else "0 RQ workers") in page
    assert '<span class="num">none</span>' in page
    assert "oldest queued job (1 waiting)" in page
    assert '<span class="num">0 s</span>' in page or '<span class="num">1 s</span>' in page


def test_charts_are_server_side_svg_by_channel_and_status(client, login_as, customer):
    login_as("admin")
    event = make_event(customer)
    make_notification(customer=customer, event=event, channel=Channel.SMS, status=S.SENT)
    make_notification(customer=customer, event=event, channel=Channel.EMAIL, status=S.FAILED)
    make_notification(
        customer=customer, channel=Channel.EMAIL, status=S.DELIVERED, created_at=utcnow() - timedelta(days=3)
    )
    day = client.get("/").text
    assert "Deliveries per hour by status, last 24 hours" in day and "(2 in all, peak 2/h)" in day
    assert day.count('<svg class="chart"') >= 2 and "<script" not in day.split("<main")[1].split("</main>")[0]
    assert "UTC: 1 sms</title>" in day and "UTC: 1 failed</title>" in day
    week = client.get("/?range=7d").text
    assert "last 7 days" in week and "(3 in all" in week and "UTC: 1 delivered</title>" in week


def test_sla_compliance_per_customer_over_30_days(client, login_as, customer, make_customer, make_ticket):
    login_as("admin")
    globex = make_customer("Globex")
    now = utcnow()
    due = now - timedelta(days=2)
    make_ticket(customer=customer, title="on time", due_at=due, resolved_at=due - timedelta(hours=1))
    make_ticket(customer=customer, title="late", due_at=due, resolved_at=due + timedelta(hours=1))
    make_ticket(customer=customer, title="very old", due_at=now - timedelta(days=40), breached_at=now)
    make_ticket(customer=globex, title="never answered", due_at=due, breached_at=due)
    compliance = section(client.get("/").text, "SLA compliance per customer (30 days)")
    assert "Acme Corp" in compliance and "50% (1/2)" in compliance
    assert "Globex" in compliance and "0% (0/1)" in compliance


def test_empty_dashboard_says_so(client, login_as):
    login_as("viewer")
    page = client.get("/").text
    assert "No ticket is at risk or breached." in page and "No delivery failed in the last 24 hours." in page
    assert "No ticket was due in the last 30 days." in page


def test_dashboard_statements_do_not_grow_with_rows(client, login_as, customer, make_ticket):
    from tests.ops_helpers import count_statements

    login_as("admin")
    make_ticket(customer=customer, title="late", due_at=utcnow() - timedelta(hours=1))
    make_notification(customer=customer, status=S.FAILED, event=make_event(customer, title="e"))
    db.session.expire_all()
    with count_statements() as few:
        client.get("/")
    for i in range(15):
        make_ticket(customer=customer, title=f"late {i}", due_at=utcnow() - timedelta(hours=1))
        make_notification(customer=customer, status=S.FAILED, event=make_event(customer, title=f"e{i}"))
    db.session.expire_all()
    with count_statements() as many:
        client.get("/")
    assert len(many) == len(few)


def test_newest_open_tickets_are_listed(client, login_as, customer, make_ticket):
    login_as("viewer")
    make_ticket(customer=customer, title="Printer on fire")
    make_ticket(customer=customer, title="Old and done", status="resolved")
    attention = section(client.get("/").text, "Tickets needing attention")
    assert "Printer on fire" in attention and "Old and done" not in attention and "(1 open)" in attention
