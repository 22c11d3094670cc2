"""The inbox (web notifications, unread badge, mark read) and the audit log page."""

from __future__ import annotations

import sqlalchemy as sa

from tests.admin_world import QueryCounter
from webapp.extensions import db
from webapp.models import AuditLog, Channel, Event, EventStatus, Notification, NotificationStatus, Severity


def _notify(
    user,
    *,
    title: str,
    channel: Channel = Channel.WEB,
    n: int = 0,
    status: NotificationStatus = NotificationStatus.SENT,
) -> Notification:
    event = Event(
        customer_id=None,
        source="test",
        dedup_key=f"{title}-{n}",
        status=EventStatus.FIRING,
        severity=Severity.HIGH,
        title=title,
        body="",
        labels={},
        data={},
    )
    db.session.add(event)
    db.session.flush()
    notification = Notification(
        event_id=event.id, user_id=user.id, channel=channel, status=status, subject=title, body="b"
    )
    db.session.add(notification)
    db.session.commit()
    return notification


def test_unread_count_in_the_menu_and_mark_read(client, login_as, make_user):
    me = login_as("viewer")
    first = _notify(me, title="Disk full")
    _notify(me, title="CPU hot")
    _notify(me, title="By email", channel=Channel.EMAIL)
    _notify(make_user("viewer"), title="Not mine")
    _notify(me, title="Below my minimum", status=NotificationStatus.SUPPRESSED)
    _notify(me, title="In quiet hours", status=NotificationStatus.DEFERRED)
    page = client.get("/inbox").text
    assert 'title="unread">2</span>' in page
    assert "Disk full" in page and "CPU hot" in page and "By email" not in page and "Not mine" not in page
    assert "Below my minimum" not in page and "In quiet hours" not in page
    assert client.post(f"/inbox/{first.id}/read").status_code == 302
    assert 'title="unread">1</span>' in client.get("/").text
    client.post("/inbox/read-all")
    assert 'title="unread"' not in client.get("/inbox").text
    db.session.expire_all()
    assert db.session.get(Notification, first.id).read_at is not None


def test_someone_elses_notification_cannot_be_marked(client, login_as, make_user):
    other = make_user("viewer")
    theirs = _notify(other, title="Theirs")
    login_as("admin")
    assert client.post(f"/inbox/{theirs.id}/read").status_code == 404
    db.session.expire_all()
    assert db.session.get(Notification, theirs.id).read_at is None


def test_inbox_queries_do_not_grow_with_its_length(client, login_as):
    me = login_as("viewer")
    _notify(me, title="one")
    with QueryCounter() as few:
        client.get("/inbox")
    for n in range(40):
        _notify(me, title="many", n=n)
    with QueryCounter() as many:
        client.get("/inbox")
    assert many.count == few.count


def test_audit_log_shows_who_what_and_from_where_to_admins_only(client, login_as):
    admin = login_as("admin")
    client.post("/customers/new", data={"name": "Globex", "timezone": "UTC"})
    page = client.get("/audit")
    assert page.status_code == 200
    assert "customer.create" in page.text and admin.name in page.text and "127.0.0.1" in page.text
    assert "customer.create" not in client.get("/audit?action=user.").text
    row = db.session.scalar(sa.select(AuditLog))
    assert row.ip_address == "127.0.0.1"
    client.post("/logout")
    login_as("operator")
    assert client.get("/audit").status_code == 403
