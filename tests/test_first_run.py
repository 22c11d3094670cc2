"""The dashboard's first-run checklist: a new admin's five steps, each ticked when OpsRelay sees it done."""

from __future__ import annotations

from tests.ops_helpers import make_event, make_notification
from webapp.extensions import db
from webapp.models import Channel, Customer, NotificationStatus, PhoneNumber


def _steps(page: str) -> dict[str, str]:
    panel = page.split('id="first-run"')[1].split("</section>")[0]
    rows = panel.split('<li class="first-step step-')[1:]
    return {row.split(" ")[0]: row.split(" ")[1].split('"')[0] for row in rows}


def test_a_new_admin_is_walked_through_the_first_steps_and_each_is_ticked(client, login_as, make_user, app):
    app.config["PUBLIC_BASE_URL"] = "https://ops.example.com"
    admin = login_as("admin", customers=[])
    for customer in db.session.scalars(db.select(Customer)):
        db.session.delete(customer)  # a fresh install: no customer yet
    db.session.commit()

    page = client.get("/").text
    assert _steps(page) == dict.fromkeys(["customer", "phone", "alertmanager", "test_sms", "teammate"], "todo")
    assert "0 of 5 done" in page
    assert 'href="/customers/new">Create a customer</a>' in page
    assert f'href="/users/{admin.id}/phones">Add your phone number</a>' in page
    assert 'url: "https://ops.example.com/api/v1/webhooks/alertmanager"' in page  # the copy-paste receiver
    assert 'href="/test-sends">Send a test SMS</a>' in page and 'href="/users/new">Invite a teammate</a>' in page

    customer = Customer(name="Acme Corp")
    db.session.add_all([customer, PhoneNumber(user_id=admin.id, number="+14155550101", is_primary=True)])
    db.session.commit()
    make_event(customer, title="DiskFull")  # from Alertmanager
    make_notification(channel=Channel.SMS, status=NotificationStatus.SENT)  # a test SMS: no event
    steps = _steps(client.get("/").text)
    assert steps == {**dict.fromkeys(["customer", "phone", "alertmanager", "test_sms"], "done"), "teammate": "todo"}

    make_user("operator", customers=[customer])
    assert 'id="first-run"' not in client.get("/").text  # all done: the checklist goes away


def test_only_admins_get_the_checklist(client, login_as):
    login_as("operator")
    assert 'id="first-run"' not in client.get("/").text
