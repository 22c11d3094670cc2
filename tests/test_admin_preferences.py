"""Notification preferences: my own, an admin editing anyone's, and one change for many users."""

from __future__ import annotations

from datetime import time

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import AuditLog, NotificationPreference, Severity

FORM = {
    "enabled_channels": ["web", "sms"],
    "min_severity_web": "low",
    "min_severity_email": "high",
    "min_severity_sms": "critical",
    "event_types": ["alert", "sla_breach"],
    "job_types": "backup, etl-nightly",
    "override_email": "Pager@Example.com",
    "timezone": "Europe/Paris",
    "quiet_hours_start": "22:00",
    "quiet_hours_end": "07:00",
    "critical_bypasses_quiet_hours": "y",
    "max_notifications_per_hour": "12",
    "aggregation_window_seconds": "300",
}


def _pref(user_id: int) -> NotificationPreference | None:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(NotificationPreference).where(
            NotificationPreference.user_id == user_id, NotificationPreference.customer_id.is_(None)
        )
    )


def test_everyone_saves_their_own_preferences(client, login_as):
    me = login_as("viewer")
    assert client.get("/preferences").status_code == 200
    assert _pref(me.id) is None  # looking does not create a row
    response = client.post("/preferences", data=FORM)
    assert response.status_code == 302
    pref = _pref(me.id)
    assert pref.enabled_channels == ["web", "sms"]
    assert pref.event_types == ["alert", "sla_breach"] and pref.job_types == ["backup", "etl-nightly"]
    assert pref.override_email == "pager@example.com" and pref.timezone == "Europe/Paris"
    assert (pref.quiet_hours_start, pref.quiet_hours_end) == (time(22, 0), time(7, 0))
    assert pref.max_notifications_per_hour == 12 and pref.min_severity_sms == Severity.CRITICAL
    page = client.get("/preferences").text
    assert 'value="backup, etl-nightly"' in page and 'value="22:00"' in page
    assert db.session.scalar(sa.select(AuditLog.action).where(AuditLog.target_id == me.id)) == "preference.update"


def test_half_quiet_hours_and_bad_values_are_refused_and_kept(client, login_as):
    me = login_as("operator")
    bad = {**FORM, "quiet_hours_end": "", "max_notifications_per_hour": "0", "timezone": "Nowhere/Land"}
    response = client.post("/preferences", data=bad)
    assert response.status_code == 400
    assert "Give both ends of the quiet hours, or neither." in response.text
    assert "Pick a time zone from the list" in response.text
    assert "Number must be between 1 and 10000." in response.text
    assert 'value="backup, etl-nightly"' in response.text  # what was typed stays
    assert _pref(me.id) is None


def test_admin_edits_someone_elses_preferences_others_cannot(client, login_as, make_user):
    kim = make_user("viewer")
    login_as("operator")
    assert client.get(f"/users/{kim.id}/preferences").status_code == 403
    assert client.post(f"/users/{kim.id}/preferences", data=FORM).status_code == 403
    assert _pref(kim.id) is None


def test_admin_edits_anyones_preferences(client, login_as, make_user):
    login_as("admin")
    kim = make_user("viewer")
    assert client.post(f"/users/{kim.id}/preferences", data=FORM).status_code == 302
    assert _pref(kim.id).timezone == "Europe/Paris"


def test_bulk_change_for_many_users(client, login_as, make_user):
    login_as("admin")
    a, b, c = make_user("viewer"), make_user("operator"), make_user("viewer")
    client.post(f"/users/{a.id}/preferences", data=FORM)  # a has a row with web+sms; b has none
    response = client.post(
        "/preferences/bulk",
        data={"users": [a.id, b.id], "channel_sms": "off", "channel_email": "on", "min_severity_email": "critical"},
    )
    assert response.status_code == 302
    pa, pb = _pref(a.id), _pref(b.id)
    assert pa.enabled_channels == ["web", "email"] and pb.enabled_channels == ["web", "email"]
    assert pa.min_severity_email == pb.min_severity_email == Severity.CRITICAL
    assert pa.timezone == "Europe/Paris"  # what was not part of the change stays
    assert _pref(c.id) is None
    row = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "preference.bulk_update"))
    assert row.changes["users"] == [a.id, b.id]


def test_bulk_change_needs_users_and_a_change_and_an_admin(client, login_as, make_user):
    admin = login_as("admin")
    empty = client.post("/preferences/bulk", data={"users": [admin.id]})
    assert empty.status_code == 400 and "Choose at least one change to apply." in empty.text
    nobody = client.post("/preferences/bulk", data={"channel_sms": "off"})
    assert nobody.status_code == 400 and "Tick at least one user." in nobody.text
    assert _pref(admin.id) is None


def test_bulk_page_lists_users_by_customer_and_role(client, login_as, make_user, make_customer):
    login_as("admin")
    globex = make_customer("Globex")
    make_user("viewer", name="Vera Globex", customers=[globex])
    make_user("operator", name="Otto Globex", customers=[globex])
    make_user("viewer", name="Vic Acme")
    page = client.get(f"/preferences/bulk?customer={globex.id}&role=viewer").text
    assert "Vera Globex" in page and "Otto Globex" not in page and "Vic Acme" not in page
