"""The delivery log: filters, keyset pages, tenant scoping, the explanation, and the status JSON."""

from __future__ import annotations

from tests.ops_helpers import bulk_notifications, count_statements, make_event, make_notification
from webapp.extensions import db
from webapp.models import Channel, NotificationStatus, Severity, WebhookDelivery, WebhookEndpoint

S = NotificationStatus


def test_log_lists_notifications_and_filters_by_status_channel_and_event_type(client, login_as, customer):
    user = login_as("viewer")
    disk = make_event(customer, title="DiskFull on db-1")
    backup = make_event(customer, title="Nightly backup done", event_type="scheduled_backup_complete")
    make_notification(customer=customer, user=user, event=disk, status=S.FAILED, error_message="Twilio 400: bad")
    make_notification(
        customer=customer, user=user, event=backup, channel=Channel.EMAIL, status=S.SUPPRESSED, reason="quiet"
    )

    page = client.get("/deliveries").text
    assert "DiskFull on db-1" in page and "Nightly backup done" in page

    failed = client.get("/deliveries?status=failed").text
    assert "DiskFull on db-1" in failed and "Nightly backup done" not in failed
    email = client.get("/deliveries?channel=email").text
    assert "Nightly backup done" in email and "DiskFull on db-1" not in email
    by_type = client.get("/deliveries?event_type=scheduled_backup_complete").text
    assert "Nightly backup done" in by_type and "DiskFull on db-1" not in by_type
    by_user = client.get(f"/deliveries?user={user.id}").text
    assert "DiskFull on db-1" in by_user


def test_bad_filter_values_are_refused_next_to_the_field_not_a_500(client, login_as, customer):
    login_as("admin")
    make_notification(customer=customer, body="kept")
    page = client.get("/deliveries?status=exploded&since=yesterday&before=abc")
    assert page.status_code == 200
    assert "Not a valid choice" in page.text and "Not a valid date value" in page.text


def test_date_filter(client, login_as, customer):
    from datetime import timedelta

    from webapp.models import utcnow

    login_as("admin")
    old_event = make_event(customer, title="Old outage")
    make_notification(customer=customer, event=old_event, created_at=utcnow() - timedelta(days=10))
    new_event = make_event(customer, title="New outage")
    make_notification(customer=customer, event=new_event)
    since = (utcnow() - timedelta(days=1)).date().isoformat()
    page = client.get(f"/deliveries?since={since}").text
    assert "New outage" in page and "Old outage" not in page
    until = (utcnow() - timedelta(days=5)).date().isoformat()
    page = client.get(f"/deliveries?until={until}").text
    assert "Old outage" in page and "New outage" not in page


def test_operator_sees_only_their_customers_rows(client, login_as, customer, make_customer):
    other = make_customer("Globex")
    login_as("operator")
    make_notification(customer=customer, event=make_event(customer, title="Ours"))
    theirs = make_notification(customer=other, event=make_event(other, title="Theirs"))
    page = client.get("/deliveries").text
    assert "Ours" in page and "Theirs" not in page
    assert client.get(f"/deliveries/{theirs.id}").status_code == 404
    assert client.get(f"/deliveries/{theirs.id}/status").status_code == 404


def test_keyset_pages_walk_the_whole_log_with_a_bounded_number_of_statements(client, login_as, customer, app):
    app.config["PER_PAGE"] = 20
    login_as("admin")
    bulk_notifications(customer, 45)
    with count_statements() as first:
        page = client.get("/deliveries")
    assert page.text.count('href="/deliveries/') == 20
    assert "Older →" in page.text and "← Newer" not in page.text
    seen = 20
    link = page.text.split('href="/deliveries?before=')[1].split('"')[0]
    with count_statements() as second:
        page = client.get(f"/deliveries?before={link}")
    seen += page.text.count('href="/deliveries/')
    assert "← Newer" in page.text
    link = page.text.split('href="/deliveries?before=')[1].split('"')[0]
    page = client.get(f"/deliveries?before={link}")
    seen += page.text.count('href="/deliveries/')
    assert seen == 45 and "Older →" not in page.text
    # signed-in user, customers and users for the filters, the page itself, the menu's unread count:
    # not one per row, and no more deep in the log than on its first page
    assert len(first) <= 5 and len(second) <= len(first)


def test_detail_explains_a_suppressed_row_in_words(client, login_as, customer):
    user = login_as("viewer")
    event = make_event(customer, title="HighLatency", severity=Severity.MEDIUM)
    n = make_notification(
        customer=customer,
        user=user,
        event=event,
        status=S.SUPPRESSED,
        reason="below minimum severity for sms (high)",
    )
    page = client.get(f"/deliveries/{n.id}").text
    assert "Not sent — suppressed: below minimum severity for sms (high)." in page
    assert "HighLatency" in page and "medium" in page


def test_detail_of_a_failed_sms_shows_attempts_error_provider_and_segments(client, login_as, customer):
    login_as("admin")
    n = make_notification(
        customer=customer,
        event=make_event(customer),
        status=S.FAILED,
        attempts=3,
        error_code="21610",
        error_message="Twilio 400 error 21610: unsubscribed",
        sms_encoding="UCS-2",
        sms_segments=2,
        provider_id="SM123",
    )
    page = client.get(f"/deliveries/{n.id}").text
    assert "3 attempts so far." in page
    assert "(21610): Twilio 400 error 21610: unsubscribed" in page
    assert "UCS-2, 2 segments" in page and "SM123" in page


def test_webhook_row_lists_its_http_attempts(client, login_as, customer):
    login_as("admin")
    event = make_event(customer)
    endpoint = WebhookEndpoint(
        customer_id=customer.id, name="Chat bridge", url="https://x.test/h", secret_encrypted="x"
    )
    other = WebhookEndpoint(customer_id=customer.id, name="Other hook", url="https://y.test/h", secret_encrypted="x")
    db.session.add_all([endpoint, other])
    db.session.flush()
    db.session.add_all(
        [
            WebhookDelivery(endpoint_id=other.id, event_id=event.id, event_type="alert", error="other endpoint down"),
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event_id=event.id,
                event_type="alert",
                attempt=1,
                status_code=502,
                error="bad gateway",
            ),
            WebhookDelivery(
                endpoint_id=endpoint.id, event_id=event.id, event_type="alert", attempt=2, success=True, status_code=200
            ),
        ]
    )
    db.session.commit()
    n = make_notification(
        customer=customer,
        event=event,
        channel=Channel.WEBHOOK,
        recipient="https://x.test/h",
        webhook_endpoint_id=endpoint.id,
    )
    page = client.get(f"/deliveries/{n.id}").text
    assert "Webhook attempts" in page and "Chat bridge" in page and "bad gateway" in page and "ok 200" in page
    assert "other endpoint down" not in page


def test_status_endpoint_answers_json(client, login_as, customer):
    login_as("viewer")
    n = make_notification(customer=customer, status=S.QUEUED, event=make_event(customer))
    body = client.get(f"/deliveries/{n.id}/status").get_json()
    assert body["status"] == "queued" and body["settled"] is False and body["done"] is False
    assert body["recipient"] == "…0101"


def test_log_needs_login(client):
    assert client.get("/deliveries").status_code == 302
    assert client.get("/deliveries/1/status").status_code == 302
