"""Pages shaped by role (issue 18): a customer's viewer sees their customers' incidents, tickets and reports, not
the team's machinery; the dashboard groups failed deliveries by cause, in words; an operator of two customers can
assign a new ticket to the people of either; a new ticket on a fresh install leads to creating a customer."""

from __future__ import annotations

from tests.ops_helpers import make_event, make_notification
from webapp.models import Channel, NotificationStatus
from webapp.services.overview.dashboard_queries import error_in_words

S = NotificationStatus
REFUSED = "SMTP server localhost:25 (customer Acme Corp): could not connect"


def _section(page: str, css: str) -> str:
    return page.split(f'class="card {css}"')[1].split("</section>")[0]


def _fail(customer, *, channel=Channel.EMAIL, message=REFUSED, code="network", times=1, user=None):
    event = make_event(customer, title="DiskFull")
    for _ in range(times):
        make_notification(
            customer=customer,
            user=user,
            event=event,
            channel=channel,
            status=S.FAILED,
            error_code=code,
            error_message=message,
            recipient="staff-only@example.com",
        )


def test_failed_deliveries_are_grouped_by_cause_in_words(client, login_as, customer):
    login_as("operator")
    _fail(customer, times=3)
    _fail(customer, channel=Channel.SMS, code="21211", message="The 'To' number +1415555 is not a valid phone number.")
    _fail(customer, message="ConnectionRefusedError: [Errno 111] Connection refused", code=None, times=2)
    panel = _section(client.get("/").text, "failed-deliveries")
    causes = [line.split("</span>", 1)[1].strip() for line in panel.split('<li class="failure-cause">')[1:]]
    causes = [c.split("</li>")[0].strip() for c in causes]
    assert causes == [
        f"{REFUSED} — 3 emails",
        "The server refused the connection — 2 emails",  # an old row's raw exception, in words
        "The &#39;To&#39; number +1415555 is not a valid phone number. — 1 SMS",
    ]
    assert "Errno" not in panel and panel.count("status-failed") == 3
    assert "Open the 6 failed deliveries in the log" in panel


def test_errors_in_words():
    assert error_in_words("socket.gaierror: [Errno -2] Name or service not known", None) == "The name does not resolve"
    assert error_in_words("TimeoutError: timed out", None) == "The server did not answer in time"
    assert error_in_words(None, "30003") == "Error 30003 from the provider"
    assert error_in_words("", None) == "No reason given by the provider"


def test_viewers_dashboard_shows_their_work_not_the_teams_machinery(client, login_as, customer, make_ticket):
    viewer = login_as("viewer", customers=[customer])
    make_ticket(customer=customer, title="Printer on fire")
    _fail(customer, times=2)
    page = client.get("/")
    assert page.status_code == 200
    assert "Printer on fire" in page.text  # their customer's tickets
    assert "queue" not in _tiles(page.text) and "worker" not in page.text and "oldest queued job" not in page.text
    failed = _section(page.text, "failed-deliveries")
    assert "2 notifications could not be delivered" in failed
    assert "localhost:25" not in page.text and "staff-only@example.com" not in page.text  # no SMTP, no staff
    assert "Recent notifications" not in page.text
    # The team's integrations: not in their menu, and refused by the server, not just hidden.
    assert 'href="/integrations"' not in page.text
    assert client.get("/integrations").status_code == 403
    assert viewer.role == "viewer"


def _tiles(page: str) -> str:
    return page.split('<section class="tiles">')[1].split("</section>")[0]


def test_operators_dashboard_keeps_the_machinery(client, login_as, customer):
    login_as("operator")
    page = client.get("/").text
    assert "queue" in _tiles(page) and "oldest queued job" in page and "Recent notifications" in page
    assert 'href="/integrations"' in page


def test_an_operator_of_two_customers_can_assign_a_new_ticket_to_the_people_of_either(
    client, login_as, make_user, make_customer, customer
):
    other = make_customer("Globex")
    me = login_as("operator", name="Olga Operator", customers=[customer, other])
    make_user("operator", name="Ann Acme", customers=[customer])
    globex = make_user("operator", name="Gus Globex", customers=[other])
    make_user("operator", name="Nina Nobody", customers=[make_customer("Initech")])
    page = client.get("/tickets/new").text
    assignees = page.split('id="assignee"')[1].split("</select>")[0]
    assert "Ann Acme (Acme Corp)" in assignees and "Gus Globex (Globex)" in assignees
    assert "Olga Operator (Acme Corp, Globex)" in assignees and "Nina Nobody" not in assignees
    created = client.post(
        "/tickets/new", data={"customer": other.id, "title": "VPN down", "priority": "high", "assignee": globex.id}
    )
    assert created.status_code == 302
    assert "Gus Globex" in client.get(created.headers["Location"]).text
    # Someone who does not work for the picked customer is refused by the form, not assigned.
    refused = client.post(
        "/tickets/new", data={"customer": customer.id, "title": "x", "priority": "high", "assignee": globex.id}
    )
    assert refused.status_code == 200 and "Not a valid choice" in refused.text
    assert me.role == "operator"


def test_a_new_ticket_without_any_customer_leads_to_creating_one(client, login_as, make_user):
    login_as("admin", customers=[])
    from webapp.extensions import db
    from webapp.models import Customer

    for row in db.session.scalars(db.select(Customer)):
        db.session.delete(row)
    db.session.commit()
    page = client.get("/tickets/new").text
    assert 'href="/customers/new"' in page.split('class="alert alert-info no-customer"')[1].split("</div>")[0]


def test_a_simulated_sms_says_so_and_promises_no_receipt(app, customer):
    from webapp.models import utcnow
    from webapp.services.delivery import delivery_log

    simulated = make_notification(customer=customer, status=S.SENT, simulated=True, sent_at=utcnow())
    real = make_notification(customer=customer, status=S.SENT, provider_id="SM1", sent_at=utcnow())
    told = " ".join(delivery_log.explain(simulated))
    assert "simulated" in told and "no carrier will send a delivery receipt" in told
    assert "Waiting for the carrier" not in told
    assert "Waiting for the carrier's delivery receipt" in " ".join(delivery_log.explain(real))
