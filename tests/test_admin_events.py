"""/events/<id>: the event's fields, labels and links and its notifications with their reasons; scoped by customer."""

from __future__ import annotations

import re

from tests.conftest import load_fixture, run_routing_jobs
from tests.routing_helpers import fire
from webapp.extensions import db
from webapp.models import Channel, Event, Notification, utcnow


def alert(client) -> Event:
    answer = client.post(
        "/api/v1/webhooks/alertmanager",
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers={"Authorization": "Bearer test-alert-token"},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.text
    run_routing_jobs(client.application)  # the webhook's routing job, as a worker runs it right after
    return db.session.get(Event, answer.json["event_ids"][0])


def test_event_page_shows_fields_labels_links_and_why_each_notification(client, login_as, make_user):
    make_user("admin", name="Nophone Admin", customers=[])
    reader = login_as("admin", customers=[])
    event = alert(client)
    page = client.get(f"/events/{event.id}")
    assert page.status_code == 200
    assert "DiskFull" in page.text and "alertname=DiskFull" in page.text
    generator = event.data["generatorURL"]
    assert f'<a href="{generator}"' in page.text.replace("&amp;", "&")
    rows = re.findall(r"<tr><td>(.*?)</tr>", page.text.split('id="event-notifications"')[1], re.S)
    assert any("Nophone Admin" in r and "sms" in r and "no phone number" in r for r in rows), rows
    assert reader.name in page.text


def test_the_inbox_links_to_the_event_and_the_dashboard_to_its_incident(client, login_as, customer):
    me = login_as("operator", customers=[customer])
    event = fire(customer=customer, severity="critical", now=utcnow(), source="alertmanager", incident_key="fp-1")
    web = db.session.scalars(
        db.select(Notification).where(Notification.user_id == me.id, Notification.channel == Channel.WEB)
    ).one()
    assert f'href="/events/{event.id}"' in client.get("/inbox").text
    assert f'href="/incidents/{event.incident_id}"' in client.get("/").text  # the dashboard lists incidents
    assert f'href="/events/{event.id}"' in client.get(f"/deliveries/{web.id}").text


def test_others_see_a_customerless_event_only_through_their_own_notifications(client, login_as, customer):
    event = alert(client)  # no customer: admins see it, and whoever it notified
    login_as("viewer", customers=[customer])
    assert client.get(f"/events/{event.id}").status_code == 404
    client.post("/logout")
    operator = login_as("operator", customers=[customer])
    event = db.session.get(Event, event.id)
    mine = db.session.scalars(db.select(Notification).where(Notification.user_id == operator.id)).all()
    # the operator joined after the alert: nothing of theirs, so still nothing to see
    assert mine == [] and client.get(f"/events/{event.id}").status_code == 404
    assert client.get("/events/999999").status_code == 404


def test_an_event_of_a_customer_is_for_its_people_only(client, login_as, customer, make_customer):
    event = fire(customer=customer, severity="critical", now=utcnow())
    login_as("viewer", customers=[customer])
    assert client.get(f"/events/{event.id}").status_code == 200
    client.post("/logout")
    login_as("operator", customers=[make_customer("Other Co")])
    assert client.get(f"/events/{event.id}").status_code == 404


def test_the_page_and_the_api_show_a_person_the_internal_event_that_paged_them_and_only_their_rows(
    client, login_as, make_user, customer
):
    """One rule for both: a customer-less event is visible to whoever it notified, with their own notifications."""
    make_user("admin", customers=[])
    event = alert(client)
    paged = make_user("operator", customers=[customer])
    bystander = make_user("operator", customers=[customer])
    db.session.add(Notification(event_id=event.id, user_id=paged.id, channel=Channel.WEB, status="sent", body="x"))
    db.session.commit()
    everyone = db.session.scalar(db.select(db.func.count()).where(Notification.event_id == event.id))
    assert everyone > 1  # the admins' rows too, which the paged operator must not see
    for user, expected in ((paged, 200), (bystander, 404)):
        token = client.post("/api/v1/auth/token", json={"email": user.email, "password": "pw-for-tests"}).json
        answer = client.get(f"/api/v1/events/{event.id}", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert answer.status_code == expected, user.email
        client.post("/login", data={"email": user.email, "password": "pw-for-tests"})
        assert client.get(f"/events/{event.id}").status_code == expected
        client.post("/logout")
        if expected == 200:
            assert [n["user_id"] for n in answer.json["notifications"]] == [paged.id]
