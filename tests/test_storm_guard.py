"""The storm guard, on by default: per person and channel, past N messages in M minutes (SMS 5 in 10, email 10
in 10) the rest are held and go as one summary when the window frees; nothing is dropped, every held row says
why, the preview and explain show the hold, acknowledging leaves an incident out of the summary, and each user
sets it on their preference page or through the API."""

from __future__ import annotations

from datetime import timedelta

from tests.routing_helpers import T0, fire, prefer, rows
from tests.test_api_resources import token_for
from tests.test_routing_timing import release
from webapp.extensions import db
from webapp.models import Incident, Notification, NotificationPreference, Role, Severity, utcnow
from webapp.services.inbound import acks

HELD_REASON = (
    "storm guard: 5 sms messages in the last 10 minutes (limit 5): held for one summary at 2026-11-26 10:10 UTC"
)


def paged_operator(make_user, customer, **pref):
    user = make_user("operator", phone="+14155550101")
    prefer(user, customer, min_severity_sms=Severity.INFO, enabled_channels=["sms"], **pref)
    return user


def storm(customer, count: int, *, now=T0, title="DiskFull", host="db"):
    return [
        fire(customer=customer, title=title, labels={"instance": f"{host}-{i}:9100"}, now=now) for i in range(count)
    ]


def test_five_sms_go_at_once_the_rest_become_one_summary_and_nothing_is_dropped(
    app, make_user, customer, drain, twilio
):
    user = paged_operator(make_user, customer)
    sent = storm(customer, 5)
    held = [
        *[fire(customer=customer, title="DiskFull", labels={"instance": f"db-{i}:9100"}) for i in range(5, 9)],
        *[fire(customer=customer, title="CpuHigh", labels={"instance": "web-1:9100"}) for _ in range(2)],
        fire(customer=customer, title="ApiDown"),
    ]
    assert [rows(e)[(user.id, "sms")].status for e in sent] == ["pending"] * 5
    for event in held:
        row = rows(event)[(user.id, "sms")]
        assert (row.status, row.hold, row.deliver_after) == ("deferred", "storm", T0 + timedelta(minutes=10))
        assert row.reason == HELD_REASON
    drain()
    assert len(twilio.received) == 5  # the first five rang at once

    (summary_id,) = release(T0 + timedelta(minutes=10))
    drain()
    assert len(twilio.received) == 6
    link = app.config["PUBLIC_BASE_URL"] + "/incidents"
    assert twilio.received[-1]["Body"] == (
        f"+7 more critical alerts: DiskFull ×4 on db-*, CpuHigh ×2 on web-1, ApiDown, see {link}"
    )
    summary = db.session.get(Notification, summary_id)
    assert (str(summary.status), summary.hold, summary.reason) == (
        "sent",
        "digest",
        "digest of 7 notifications held by the storm guard",
    )
    for event in held:  # every held page ends in the summary, saying so
        row = rows(event)[(user.id, "sms")]
        assert (str(row.status), row.digest_id) == ("suppressed", summary_id)
        assert row.reason == f"delivered in digest #{summary_id} with 6 other notifications (storm guard)"
    # Nothing dropped: every page is either sent itself or carried by the summary.
    pages = db.session.scalars(
        db.select(Notification).where(Notification.event_id.is_not(None), Notification.channel == "sms")
    ).all()
    assert len(pages) == 12 and all(p.status in ("sent", "suppressed") for p in pages)


def test_the_window_slides_the_summary_counts_and_a_quiet_person_is_paged_again(make_user, customer, drain):
    user = paged_operator(make_user, customer)
    storm(customer, 6)
    release(T0 + timedelta(minutes=10))  # one held page: sent as itself
    later = fire(customer=customer, now=T0 + timedelta(minutes=10, seconds=30))
    assert str(rows(later)[(user.id, "sms")].status) == "pending"  # the first five left the window
    calm = fire(customer=customer, now=T0 + timedelta(hours=2))
    assert str(rows(calm)[(user.id, "sms")].status) == "pending"


def test_email_has_its_own_limit_of_ten(make_user, customer):
    user = make_user("operator")
    prefer(user, customer, enabled_channels=["email"], min_severity_email=Severity.INFO)
    events = storm(customer, 12)
    statuses = [str(rows(e)[(user.id, "email")].status) for e in events]
    assert statuses == ["pending"] * 10 + ["deferred"] * 2
    assert rows(events[-1])[(user.id, "email")].reason.startswith(
        "storm guard: 10 email messages in the last 10 minutes (limit 10)"
    )


def test_on_by_default_for_a_user_without_any_preference(make_user, customer):
    admin = make_user("admin", phone="+14155550101", customers=[])  # the admin role's default: critical by SMS
    events = storm(customer, 7)
    assert [str(rows(e)[(admin.id, "sms")].status) for e in events] == ["pending"] * 5 + ["deferred"] * 2
    assert db.session.scalar(db.select(NotificationPreference.id)) is None


def test_acknowledging_leaves_the_incident_out_of_the_summary(make_user, customer, drain, twilio):
    user = paged_operator(make_user, customer)
    storm(customer, 5)
    acked, *others = [fire(customer=customer, title=f"Alert{i}", source="generic") for i in range(3)]
    incident = db.session.get(Incident, acked.incident_id)
    assert acks.acknowledge(incident, by=user, via="the incident page", now=T0 + timedelta(minutes=1)).acknowledged
    db.session.commit()
    row = rows(acked)[(user.id, "sms")]
    assert str(row.status) == "suppressed"
    assert row.reason == f"acknowledged by {user.name}; left out of the storm summary"

    (summary_id,) = release(T0 + timedelta(minutes=10))
    made = db.session.get(Notification, summary_id)
    assert made.body.startswith("+2 more critical alerts: Alert1, Alert2, see ")
    assert all(rows(e)[(user.id, "sms")].digest_id == summary_id for e in others)


def test_an_ack_racing_the_release_is_left_out_too(make_user, customer):
    user = paged_operator(make_user, customer)
    storm(customer, 5)
    acked, *_ = [fire(customer=customer, title=f"Alert{i}", source="generic") for i in range(3)]
    db.session.get(Incident, acked.incident_id).state = "acknowledged"  # acked as the release claims the rows
    db.session.commit()
    release(T0 + timedelta(minutes=10))
    row = rows(acked)[(user.id, "sms")]
    assert (str(row.status), row.digest_id) == ("suppressed", None)
    assert row.reason == ("its incident was acknowledged or resolved before it went out; left out of the storm summary")


def test_explain_shows_the_hold(client, make_user, customer):
    user = paged_operator(make_user, customer)
    storm(customer, 5)
    held = fire(customer=customer, title="ApiDown")
    headers = token_for(client, make_user("admin", customers=[]))
    answer = client.get(f"/api/v1/users/{user.id}/explain?event={held.id}", headers=headers).json
    sms = next(c for c in answer["channels"] if c["channel"] == "sms")
    assert (sms["status"], sms["reason"], sms["notification"]["hold"]) == ("deferred", HELD_REASON, "storm")
    assert sms["explanation"] == HELD_REASON


def test_the_preview_of_an_event_during_a_storm_says_it_would_be_held(client, make_user, customer):
    user = paged_operator(make_user, customer)
    storm(customer, 5, now=utcnow())  # the preview decides on the real clock
    headers = token_for(client, make_user("admin", customers=[]))
    body = {"event": {"type": "alert", "severity": "critical", "customer": "Acme Corp", "title": "Another"}}
    preview = client.post("/api/v1/routing/preview", json=body, headers=headers)
    assert preview.status_code == 200, preview.json
    (sms,) = [d for d in preview.json["decisions"] if d["user"]["id"] == user.id and d["channel"] == "sms"]
    assert sms["decision"] == "deferred"
    assert sms["reason"].startswith("storm guard: 5 sms messages in the last 10 minutes (limit 5): held for one")


def test_each_user_sets_it_on_their_page_and_through_the_api(client, login_as, make_user, customer):
    me = login_as("operator", phone="+14155550101")
    page = client.get("/preferences").text
    assert "Storm guard" in page and 'name="storm_sms_limit"' in page and 'value="5"' in page
    form = {
        "enabled_channels": ["sms"],
        "min_severity_web": "low",
        "min_severity_email": "high",
        "min_severity_sms": "info",
        "timezone": "UTC",
        "critical_bypasses_quiet_hours": "y",
        "aggregation_window_seconds": "120",
        "storm_guard": "y",
        "storm_sms_limit": "3",
        "storm_email_limit": "10",
        "storm_window_minutes": "5",
    }
    assert client.post("/preferences", data=form).status_code == 302
    events = storm(customer, 4)
    assert [str(rows(e)[(me.id, "sms")].status) for e in events] == ["pending"] * 3 + ["deferred"]
    assert rows(events[-1])[(me.id, "sms")].deliver_after == T0 + timedelta(minutes=5)
    refused = client.post("/preferences", data={**form, "storm_sms_limit": "0"})
    assert refused.status_code == 400 and "Number must be between 1 and 1000." in refused.text

    headers = token_for(client, me)
    (mine,) = client.get("/api/v1/preferences/mine", headers=headers).json["items"]
    assert (mine["storm_guard"], mine["storm_sms_limit"], mine["storm_window_minutes"]) == (True, 3, 5)
    changed = client.patch(f"/api/v1/preferences/{mine['id']}", json={"storm_guard": False}, headers=headers)
    assert changed.status_code == 200, changed.json
    assert changed.json["storm_guard"] is False
    events = storm(customer, 8, now=T0 + timedelta(minutes=1), host="web")
    assert {str(rows(e)[(me.id, "sms")].status) for e in events} == {"pending"}  # guard off: every page goes


def test_an_existing_preference_created_without_the_fields_has_the_guard_on(make_user, customer):
    user = make_user(Role.OPERATOR, phone="+14155550101")
    pref = prefer(user, customer, min_severity_sms=Severity.INFO)
    assert (pref.storm_guard, pref.storm_sms_limit, pref.storm_email_limit, pref.storm_window_minutes) == (
        True,
        5,
        10,
        10,
    )
