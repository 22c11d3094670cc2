"""A small world for admin page tests: two customers and one row of everything that pages show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta

import sqlalchemy as sa
from flask import g

from webapp.extensions import db
from webapp.models import (
    ApiKey,
    AuditLog,
    Channel,
    Customer,
    Event,
    EventStatus,
    Heartbeat,
    Holiday,
    Incident,
    MessageTemplate,
    Notification,
    NotificationPreference,
    NotificationStatus,
    PhoneNumber,
    Priority,
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    Severity,
    SlaPolicy,
    SmtpConfig,
    TimelineEntry,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSource,
    utcnow,
)


@dataclass
class World:
    home: Customer  # the customer whose rows every id in the walk points at
    other: Customer
    member: User  # a user of `home` (not the one signed in)
    ids: dict[str, int] = field(default_factory=dict)  # table name -> an id of a row of `home`


def build_world(*, home: Customer, make_customer, make_user, make_ticket) -> World:
    other = make_customer("Other Customer")
    member = make_user("operator", name="Mona Member", phone="+14155550111", customers=[home])
    event = Event(
        customer_id=home.id,
        source="test",
        dedup_key="walk-1",
        status=EventStatus.FIRING,
        severity=Severity.HIGH,
        title="Walk alert",
        body="",
        labels={},
        data={},
    )
    incident = Incident(
        customer_id=home.id, source="test", key="walk-1", title="Walk alert", severity=Severity.HIGH, severity_rank=3
    )
    db.session.add_all([event, incident])
    db.session.flush()
    event.incident_id = incident.id
    ticket = make_ticket(customer=home, title="Walk ticket", priority=Priority.HIGH)
    entry = TimelineEntry(ticket_id=ticket.id, kind="comment", body="hello")
    db.session.add(entry)
    db.session.flush()
    notification = Notification(
        event_id=event.id,
        user_id=member.id,
        customer_id=home.id,
        channel=Channel.WEB,
        status=NotificationStatus.SENT,
        subject="Walk alert",
        body="body",
    )
    default = db.session.scalar(
        sa.select(MessageTemplate)
        .where(MessageTemplate.customer_id.is_(None), MessageTemplate.channel == Channel.SMS)
        .order_by(MessageTemplate.id)
        .limit(1)
    )
    override = MessageTemplate(
        customer_id=home.id,
        name=default.name,
        event_type=default.event_type,
        channel=default.channel,
        subject=default.subject,
        body_text=default.body_text,
    )
    smtp = SmtpConfig(customer_id=home.id, host="127.0.0.1", port=2525, from_email="ops@example.com")
    sla = SlaPolicy(customer_id=home.id, priority=Priority.HIGH, resolution_minutes=240)
    key = ApiKey(name="walk", prefix="walk", key_hash="0" * 64, customer_id=home.id)
    endpoint = WebhookEndpoint(customer_id=home.id, name="walk", url="http://127.0.0.1:9/x", secret_encrypted="x")
    pref = NotificationPreference(user_id=member.id, customer_id=None)
    holiday = Holiday(customer_id=home.id, day=date(2026, 12, 25), name="Christmas")
    db.session.add_all([notification, override, smtp, sla, key, endpoint, pref, holiday])
    db.session.flush()
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, event_type="alert")
    db.session.add(delivery)
    db.session.add(AuditLog(actor_id=member.id, action="walk.test", summary="walk", created_at=utcnow()))
    db.session.commit()
    phone = db.session.scalar(sa.select(PhoneNumber).where(PhoneNumber.user_id == member.id))
    ids = {
        "customer": home.id,
        "user": member.id,
        "phone_number": phone.id,
        "phone": phone.id,
        "event": event.id,
        "incident": incident.id,
        "ticket": ticket.id,
        "notification": notification.id,
        "message_template": override.id,
        "template": override.id,
        "smtp_config": smtp.id,
        "smtp": smtp.id,
        "config": smtp.id,
        "pref": pref.id,
        "notification_preference": pref.id,
        "sla_policy": sla.id,
        "policy": sla.id,
        "api_key": key.id,
        "key": key.id,
        "webhook_endpoint": endpoint.id,
        "endpoint": endpoint.id,
    }
    ids["webhook_delivery"] = ids["delivery"] = delivery.id
    source = WebhookSource(name="walk-source", kind="generic", customer_id=home.id)
    db.session.add(source)
    db.session.commit()
    ids["webhook_source"] = source.id
    ids["holiday"] = holiday.id
    heartbeat = Heartbeat(
        customer_id=home.id,
        name="walk-heartbeat",
        interval_seconds=60,
        grace_seconds=0,
        token_hash="0" * 64,
        token_prefix="hb_walk",
        due_at=utcnow(),
    )
    db.session.add(heartbeat)
    db.session.commit()
    ids["heartbeat"] = heartbeat.id
    schedule = Schedule(customer_id=home.id, name="Walk rota", time_zone="Europe/Paris")
    schedule.layers.append(
        ScheduleLayer(
            name="walk layer",
            rotation=Rotation.WEEKLY,
            rotation_hours=168,
            handoff_time=time(9, 0),
            starts_on=date(2026, 1, 5),
            member_ids=[member.id],
            restrictions=[],
        )
    )
    db.session.add(schedule)
    db.session.flush()
    override = ScheduleOverride(
        schedule_id=schedule.id,
        user_id=member.id,
        starts_at=utcnow() + timedelta(days=1),
        ends_at=utcnow() + timedelta(days=2),
    )
    db.session.add(override)
    db.session.commit()
    ids["schedule"] = schedule.id
    ids["layer"] = ids["schedule_layer"] = schedule.layers[0].id
    ids["override"] = ids["schedule_override"] = override.id
    ids["timeline_entry"] = ids["entry"] = entry.id
    return World(home=home, other=other, member=member, ids=ids)


class QueryCounter:
    """Counts SQL statements sent while the `with` block runs."""

    def __init__(self):
        self.count = 0

    def _count(self, *_args, **_kwargs) -> None:
        self.count += 1

    def __enter__(self):
        sa.event.listen(db.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc) -> None:
        sa.event.remove(db.engine, "before_cursor_execute", self._count)


def can_sign_in(app, email: str, password: str) -> bool:
    """Sign in from a new browser. The tests' app context (and so Flask-Login's `g` cache of the
    signed-in user) is shared by every client, so it is set aside around the attempt."""
    saved = g.pop("_login_user", None)
    try:
        return app.test_client().post("/login", data={"email": email, "password": password}).status_code == 302
    finally:
        g.pop("_login_user", None)
        if saved is not None:
            g._login_user = saved
