"""Test sends: an SMS through the loopback Twilio, or an email, watched through the status endpoint."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus


def test_test_sms_reaches_twilio_and_the_status_shows_sent(client, login_as, customer, drain, twilio):
    login_as("operator")
    answer = client.post(
        "/test-sends", data={"customer": customer.id, "channel": "sms", "to": "(415) 555-0101", "message": ""}
    )
    notification = db.session.scalars(db.select(Notification)).one()
    assert answer.headers["Location"] == f"/test-sends?watch={notification.id}"
    assert notification.recipient == "+14155550101" and notification.channel == Channel.SMS
    assert notification.sms_encoding == "GSM-7" and notification.sms_segments == 1
    assert client.get(f"/deliveries/{notification.id}/status").get_json()["status"] == "queued"
    page = client.get(answer.headers["Location"]).text
    assert f"/deliveries/{notification.id}/status" in page

    drain()
    assert [m["To"] for m in twilio.received] == ["+14155550101"]
    assert twilio.received[0]["Body"].startswith("OpsRelay test message")
    status = client.get(f"/deliveries/{notification.id}/status").get_json()
    assert status["status"] == "sent" and status["provider_id"].startswith("SM") and status["done"] is False


def test_failed_sms_shows_the_providers_message(client, login_as, customer, drain, twilio):
    login_as("operator")
    twilio.fail_next("+14155550101", 21610)
    client.post("/test-sends", data={"customer": customer.id, "channel": "sms", "to": "+14155550101"})
    drain()
    notification = db.session.scalars(db.select(Notification)).one()
    status = client.get(f"/deliveries/{notification.id}/status").get_json()
    assert status["status"] == "failed" and status["done"] is True
    assert status["error_code"] == "21610" and "unsubscribed" in status["error_message"]


def test_invalid_number_is_refused_with_a_message(client, login_as, customer):
    login_as("operator")
    page = client.post("/test-sends", data={"customer": customer.id, "channel": "sms", "to": "12345"})
    assert page.status_code == 200 and "is not a valid phone number" in page.text and 'value="12345"' in page.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Notification)) == 0


def test_test_email_to_an_address(client, login_as, customer):
    login_as("admin")
    client.post("/test-sends", data={"customer": customer.id, "channel": "email", "to": "Oncall@Example.com"})
    notification = db.session.scalars(db.select(Notification)).one()
    assert notification.channel == Channel.EMAIL and notification.recipient == "oncall@example.com"
    assert notification.status == NotificationStatus.QUEUED


def test_viewers_cannot_send_and_operators_only_for_their_customers(client, login_as, make_customer):
    other = make_customer("Globex")
    login_as("operator")
    page = client.post("/test-sends", data={"customer": other.id, "channel": "sms", "to": "+14155550101"})
    assert "Not a valid choice" in page.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Notification)) == 0


def test_viewer_gets_403(client, login_as, customer):
    login_as("viewer")
    assert client.get("/test-sends").status_code == 403
    assert client.post("/test-sends", data={"customer": customer.id, "to": "+14155550101"}).status_code == 403


def test_the_form_keeps_the_last_send_to_send_it_again(client, login_as, make_customer, customer, make_user):
    other = make_customer("Globex")
    login_as("operator", customers=[customer, other])
    answer = client.post(
        "/test-sends", data={"customer": other.id, "channel": "sms", "to": "(415) 555-0101", "message": "Ping 1"}
    )
    page = client.get(answer.headers["Location"]).text
    assert f'<option selected value="{other.id}">Globex</option>' in page
    assert 'value="+14155550101"' in page and "Ping 1</textarea>" in page

    # Someone else's send (or an alert's notification) fills nothing in.
    theirs = Notification(
        customer_id=other.id, user_id=make_user("operator", customers=[other]).id, channel=Channel.SMS,
        recipient="+14155550199", body="theirs", status=NotificationStatus.SENT,
    )  # fmt: skip
    db.session.add(theirs)
    db.session.commit()
    assert "+14155550199" not in client.get(f"/test-sends?watch={theirs.id}").text
