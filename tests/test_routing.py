"""Routing decisions: role defaults, customer scoping, every suppression reason, tickets and audiences,
resolved alerts, templates and the fixed statement count."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.routing_helpers import T0, fire, item, prefer, rows
from webapp.extensions import db
from webapp.models import Event, EventStatus, MessageTemplate, Notification, PhoneNumber, Severity, User
from webapp.services.events import ingest
from webapp.services.routing import decisions


def test_role_defaults_when_users_have_no_preference(make_user, customer):
    admin = make_user("admin", phone="+14155550101")
    operator = make_user("operator", phone="+14155550102")
    viewer = make_user("viewer", phone="+14155550103")

    critical = fire(severity="critical", customer=customer)
    assert {k: str(n.status) for k, n in rows(critical).items()} == {
        (admin.id, "sms"): "pending",  # the first seed's page
        (operator.id, "web"): "sent",
        (operator.id, "email"): "pending",
        (operator.id, "sms"): "pending",
    }

    high = fire(severity="high", customer=customer)
    high_rows = rows(high)
    assert set(high_rows) == {(operator.id, "web"), (operator.id, "email"), (operator.id, "sms")}
    assert high_rows[(operator.id, "sms")].reason == (
        "below the minimum severity for SMS: the event is high, SMS needs critical or above"
    )
    assert rows(fire(severity="medium", customer=customer)) == {}  # nobody's default covers it

    failed = fire(event_type="job_failed", severity="high", customer=customer, job_type="config_backup")
    assert {k: str(n.status) for k, n in rows(failed).items()} == {
        (admin.id, "web"): "sent",
        (admin.id, "email"): "pending",
        (admin.id, "sms"): "suppressed",
    }
    done = fire(event_type="job_success", severity="info", customer=customer)
    assert set(rows(done)) == {(viewer.id, "web"), (viewer.id, "email")}
    assert rows(done)[(viewer.id, "email")].recipient == viewer.email


def test_users_only_hear_about_their_customers_admins_about_all(make_user, make_customer, customer):
    other = make_customer("Globex")
    ours = make_user("operator")
    theirs = make_user("operator", customers=[other])
    admin = make_user("admin", phone="+14155550101", customers=[])
    event = fire(severity="critical", customer=other)
    assert {uid for uid, _ in rows(event)} == {theirs.id, admin.id}
    assert ours.id not in {uid for uid, _ in rows(event)}


def test_preference_of_a_former_member_records_not_a_member(make_user, make_customer, customer):
    former = make_user("operator", customers=[])
    prefer(former, customer, enabled_channels=["web", "email"])
    event = fire(severity="critical", customer=customer)
    assert {k: n.reason for k, n in rows(event).items()} == {
        (former.id, channel): "not a member of customer Acme Corp" for channel in ("web", "email", "sms")
    }


@pytest.mark.parametrize(
    ("setup", "channel", "reason"),
    [
        ({"phone": None}, "sms", "no phone number: add one on the user's page"),
        ({"phone": "+14155550109", "opted_out": True}, "sms", "opted out of SMS (number …0109)"),
        ({"email": ""}, "email", "no email address"),
        ({"pref": {"enabled_channels": ["web", "email"]}}, "sms", "SMS is disabled in notification preference #"),
        (
            {"pref": {"min_severity_email": Severity.CRITICAL}, "severity": "high"},
            "email",
            "below the minimum severity for email: the event is high, email needs critical or above",
        ),
        ({"pref": {"event_types": ["job_failed"]}}, "web", "not subscribed to alert events"),
        (
            {"pref": {"job_types": ["compliance_check"]}, "event_type": "job_failed", "job_type": "config_backup"},
            "email",
            "job type config_backup is filtered out: the job-type filter allows only compliance_check",
        ),
        ({"member": False}, "web", "not a member of customer Acme Corp"),
    ],
    ids=[
        "no-phone",
        "opted-out",
        "no-email",
        "channel-disabled",
        "below-severity",
        "not-subscribed",
        "job-type",
        "not-member",
    ],
)
def test_each_suppression_reason_is_recorded_in_words(make_user, customer, setup, channel, reason):
    user = make_user(
        "operator",
        phone=setup.get("phone", "+14155550101"),
        opted_out=setup.get("opted_out", False),
        customers=[customer] if setup.get("member", True) else [],
    )
    if "email" in setup:
        user.email = setup["email"]
        db.session.commit()
    prefer(user, customer, **{"min_severity_sms": Severity.INFO, **setup.get("pref", {})})
    event = fire(
        severity=setup.get("severity", "critical"),
        customer=customer,
        event_type=setup.get("event_type", "alert"),
        job_type=setup.get("job_type"),
    )
    row = rows(event)[(user.id, channel)]
    assert row.status == "suppressed"
    assert reason in row.reason


def test_explicit_preference_records_every_channel_and_uses_override_email(make_user, customer):
    user = make_user("viewer", phone="+14155550101")
    prefer(user, override_email="oncall@example.org", min_severity_sms=Severity.HIGH)
    event = fire(severity="high", customer=customer)
    got = rows(event)
    assert {k[1]: str(n.status) for k, n in got.items()} == {"web": "sent", "email": "pending", "sms": "pending"}
    assert got[(user.id, "email")].recipient == "oncall@example.org"
    assert got[(user.id, "sms")].recipient == "+14155550101"


def test_customer_preference_wins_over_the_users_default_preference(make_user, make_customer, customer):
    other = make_customer("Globex")
    user = make_user("operator", customers=[customer, other])
    prefer(user, enabled_channels=["web"])
    prefer(user, other, enabled_channels=["email"])
    assert {k[1]: str(n.status) for k, n in rows(fire(customer=customer)).items()}["web"] == "sent"
    assert {k[1]: str(n.status) for k, n in rows(fire(customer=other)).items()}["web"] == "suppressed"


def test_ticket_assignee_and_audience_are_candidates(make_user, make_ticket, make_customer, customer):
    other = make_customer("Globex")
    assignee = make_user("operator", phone="+14155550101")
    bystander = make_user("operator")
    outside_admin = make_user("admin", customers=[other])
    ticket = make_ticket(customer=customer, assignee_id=assignee.id)
    event = Event(
        source="sla",
        event_type="sla_breach",
        dedup_key="t1",
        status=EventStatus.FIRING,
        severity=Severity.HIGH,
        title="OPS-1 breached",
        customer_id=customer.id,
        ticket_id=ticket.id,
    )
    db.session.add(event)
    db.session.flush()
    decisions.route([event], now=T0, audience=[outside_admin.id])
    got = rows(event)
    assert {uid for uid, _ in got} == {assignee.id, outside_admin.id}  # the audience, not the members
    assert got[(outside_admin.id, "email")].status == "pending"  # membership not required for the audience
    assert bystander.id not in {uid for uid, _ in got}


def test_resolved_alert_goes_to_those_notified_of_the_firing_one(make_user, customer):
    told = make_user("operator", phone="+14155550101")
    quiet = make_user("operator", phone="+14155550102")
    prefer(quiet, customer, notify_on_resolve=False, min_severity_sms=Severity.INFO)
    firing = fire(severity="critical", customer=customer, key="fp1")
    late = make_user("operator", phone="+14155550103")  # joined after the alert fired
    resolved = fire(severity="critical", customer=customer, key="fp1", status="resolved")
    got = rows(resolved)
    assert {k for k in got if k[0] == told.id} == {k for k in rows(firing) if k[0] == told.id}
    assert got[(told.id, "sms")].body.startswith("[RESOLVED] DiskFull")
    assert got[(quiet.id, "sms")].reason == "chose not to be told when alerts resolve"
    assert late.id not in {uid for uid, _ in got}


def test_missing_template_falls_back_to_plain_text_and_sms_respects_the_segment_cap(app, make_user, customer):
    app.config["SMS_MAX_SEGMENTS"] = 1
    admin = make_user("admin", phone="+14155550101")
    long_title = "Backup of core-switch-" + "x" * 250
    event = fire(event_type="job_failed", severity="critical", customer=customer, title=long_title)
    got = rows(event)
    assert got[(admin.id, "web")].subject.startswith("[CRITICAL] Backup of core-switch-")  # no web template
    assert "Severity: critical" in got[(admin.id, "web")].body
    assert got[(admin.id, "email")].subject.startswith("[FAILED] Backup of core-switch-")  # the seeded one
    sms = got[(admin.id, "sms")]
    assert sms.body.endswith("…") and (sms.sms_encoding, sms.sms_segments) == ("UCS-2", 1)


def test_template_that_does_not_render_falls_back_with_a_note(make_user, customer):
    db.session.add(
        MessageTemplate(
            name="broken", event_type="alert", channel="sms", body_text="{{ x.y.z }", customer_id=customer.id
        )
    )
    db.session.commit()
    admin = make_user("admin", phone="+14155550101")
    sms = rows(fire(customer=customer))[(admin.id, "sms")]
    assert sms.status == "pending" and sms.body.startswith("[CRITICAL] DiskFull")
    assert "template 'broken' did not render" in sms.reason


def count_statements(callable_):
    engine = db.engine
    statements = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        callable_()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    return statements


def _crowd(customer, n: int, tag: str) -> None:
    """n users in mixed shapes: role defaults, preferences with caps and aggregation, phones, opt-outs."""
    users = [
        {
            "email": f"{tag}{i}@example.com",
            "name": f"U{i}",
            "password_hash": "x",
            "role": ("operator", "viewer", "admin")[i % 3],
        }
        for i in range(n)
    ]
    ids = [r.id for r in db.session.execute(sa.insert(User).returning(User.id), users)]
    db.session.execute(
        sa.insert(sa.table("user_customer", sa.column("user_id"), sa.column("customer_id"))),
        [{"user_id": i, "customer_id": customer.id} for i in ids],
    )
    db.session.execute(
        sa.insert(PhoneNumber),
        [
            {"user_id": i, "number": f"+1415555{k:04d}", "is_primary": True, "opted_out": k % 7 == 0}
            for k, i in enumerate(ids)
        ],
    )
    for k, i in enumerate(ids[::2]):
        user = db.session.get(User, i)
        prefer(
            user,
            customer,
            max_notifications_per_hour=5 if k % 2 else None,
            enable_aggregation=k % 4 == 0,
            quiet_hours_start=None,
            min_severity_sms=Severity.HIGH,
        )
    db.session.commit()


@pytest.mark.parametrize("first_count", [10])
def test_routing_one_event_to_10_or_500_users_costs_the_same_statements(make_customer, first_count):
    small, large = make_customer("Small"), make_customer("Large")
    _crowd(small, first_count, "s")
    _crowd(large, 500, "l")
    db.session.expire_all()

    def route_to(customer):
        result = ingest.ingest([item(customer=customer, severity="critical")], now=T0)
        return result

    small_statements = count_statements(lambda: route_to(small))
    large_statements = count_statements(lambda: route_to(large))
    assert len(small_statements) == len(large_statements), (small_statements, large_statements)
    made = db.session.scalar(
        sa.select(sa.func.count()).select_from(Notification).where(Notification.customer_id == large.id)
    )
    assert made > 500  # the 500 users really were routed: several channels each


def test_firing_and_resolved_in_one_batch_tell_the_same_people(make_user, customer):
    admin = make_user("admin", phone="+14155550101")
    result = ingest.ingest([item(customer=customer, key="fp9"), item(customer=customer, key="fp9", status="resolved")])
    firing, resolved = result.events
    assert set(rows(firing)) == set(rows(resolved)) == {(admin.id, "sms")}
