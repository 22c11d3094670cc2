"""`flask demo seed`: a realistic team on an empty database, so the dashboard, charts, delivery log, tickets,
SLA report and heartbeats show a living system at once.

Three customers with business hours and SLA policies; users of every role with (fictional 555-01xx) phones;
SMTP configs (sent by the EMAIL_BACKEND, the console one on a laptop); a week of alerts from Alertmanager,
PagerDuty and a generic sender, with notifications in every state; tickets on time, at risk, breached and
resolved; heartbeats, one of them late; an on-call schedule (a weekly rotation of three, with an override).
History is written as rows with past timestamps (the services stamp "now"); nothing is queued except a few
in-app notifications. Flushes, never commits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from webapp.extensions import db
from webapp.models import (
    EVENT_KINDS,
    BusinessCalendar,
    Channel,
    Customer,
    Event,
    EventStatus,
    Heartbeat,
    Incident,
    IncidentState,
    Notification,
    NotificationStatus,
    PhoneNumber,
    Priority,
    Role,
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    Severity,
    SlaPolicy,
    SmtpConfig,
    Ticket,
    TicketStatus,
    User,
    open_key,
    utcnow,
)
from webapp.security import hash_api_key
from webapp.services.oncall import schedules

PASSWORD = "demo-password"  # noqa: S105 - printed for the demo's fictional people
S = NotificationStatus
CUSTOMERS = [
    ("Acme Logistics", "acme.example", "America/New_York"),
    ("Globex Retail", "globex.example", "Europe/Berlin"),
    ("Initech Bank", "initech.example", "UTC"),
]
PEOPLE = [  # (name, role, customers by index; None: every customer)
    ("Alice Admin", Role.ADMIN, None),
    ("Oscar Operator", Role.OPERATOR, [0]),
    ("Olivia Operator", Role.OPERATOR, [1, 2]),
    ("Omar Operator", Role.OPERATOR, [2]),
    ("Vera Viewer", Role.VIEWER, [0]),
    ("Victor Viewer", Role.VIEWER, [1]),
]
ALERTS = [
    ("alertmanager", "alert", Severity.CRITICAL, "DiskFull on db-{n}", "Disk /var/lib/postgresql is 97% full"),
    ("alertmanager", "alert", Severity.HIGH, "HighLatency on api-{n}", "p99 latency above 2 s for 10 minutes"),
    ("alertmanager", "alert", Severity.MEDIUM, "CertificateExpiring on lb-{n}", "TLS certificate expires in 7 days"),
    ("pagerduty", "alert", Severity.CRITICAL, "Payment gateway errors ({n})", "5xx rate above 5% at the gateway"),
    ("generic", "job_failed", Severity.HIGH, "Backup of core-sw-{n} failed", "Timeout after 300 s"),
    ("generic", "job_success", Severity.INFO, "Backup of edge-{n} done", "Config saved, 212 KB"),
    ("generic", "compliance_violation", Severity.HIGH, "Telnet enabled on sw-{n}", "Policy: no cleartext management"),
]
FINAL = [S.SENT] * 3 + [S.DELIVERED] * 6 + [S.FAILED, S.SUPPRESSED, S.SUPPRESSED]


@dataclass
class Seeded:
    customers: list[Customer] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    events: int = 0
    notifications: int = 0
    tickets: int = 0
    heartbeats: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.customers)} customers, {len(self.users)} users, {self.events} events, "
            f"{self.notifications} notifications, {self.tickets} tickets, {self.heartbeats} heartbeats"
        )


def has_data() -> bool:
    """Customers, events or tickets already there (the first admin of `flask dev` alone does not count)."""
    return any(db.session.scalar(db.select(model.id).limit(1)) is not None for model in (Customer, Event, Ticket))


def seed(*, now: datetime | None = None, rng: random.Random | None = None) -> Seeded:
    now = now or utcnow()
    rng = rng or random.Random(17)  # noqa: S311 - demo data, not security
    done = Seeded()
    suffix = "" if not has_data() else f" {now:%H%M%S}"  # --force on a populated database: new names
    for name, domain, zone in CUSTOMERS:
        customer = Customer(name=name + suffix, timezone=zone)
        db.session.add(customer)
        db.session.flush()
        db.session.add(BusinessCalendar(customer_id=customer.id, timezone=zone))
        for priority, minutes in ((Priority.URGENT, 240), (Priority.HIGH, 8 * 60), (Priority.NORMAL, 24 * 60)):
            db.session.add(
                SlaPolicy(
                    customer_id=customer.id,
                    priority=priority,
                    resolution_minutes=minutes,
                    first_response_minutes=minutes // 4,
                    warning_minutes=60,
                    business_hours_only=priority == Priority.NORMAL,
                    escalation_minutes=30,
                )
            )
        db.session.add(
            SmtpConfig(
                customer_id=customer.id,
                name="Main relay",
                host=f"smtp.{domain}",
                port=587,
                from_email=f"alerts@{domain}",
                from_name=f"{name} on-call",
                reply_to=f"noc@{domain}",
            )
        )
        done.customers.append(customer)
    for number, (person, role, indexes) in enumerate(PEOPLE, start=1):
        first = person.split()[0].lower()
        user = User(
            email=f"{first}{suffix.strip()}@demo.example",
            name=person,
            role=role,
            is_active=True,
            customers=done.customers if indexes is None else [done.customers[i] for i in indexes],
        )
        user.set_password(PASSWORD)
        user.phone_numbers.append(
            PhoneNumber(number=f"+1415555{100 + number:04d}", is_primary=True, verified_at=now - timedelta(days=30))
        )
        db.session.add(user)
        done.users.append(user)
    db.session.flush()
    _history(done, now=now, rng=rng, suffix=suffix.strip())
    _tickets(done, now=now)
    _heartbeats(done, now=now)
    _schedule(done, now=now)
    db.session.flush()
    return done


def _recipients(customer: Customer, users: list[User]) -> list[User]:
    return [u for u in users if customer in u.customers]


def _incident(event: Event, n: int, *, acked_by: User, rng: random.Random, now: datetime) -> Incident:
    """The incident of a demo alert: open (one in four acknowledged) while it fires, else resolved."""
    key = f"{event.dedup_key}-incident"
    incident = Incident(
        customer_id=event.customer_id,
        source=event.source,
        key=key,
        state=IncidentState.TRIGGERED,
        severity=event.severity,
        severity_rank=event.severity.rank,
        event_type=event.event_type,
        title=event.title,
        summary=event.body,
        labels=event.labels,
        triggered_at=event.created_at,
        last_event_at=event.created_at,
        created_at=event.created_at,
    )
    if event.status == EventStatus.RESOLVED:
        incident.state, incident.resolved_at, incident.resolved_via = IncidentState.RESOLVED, now, "the sender"
    else:
        incident.open_key = open_key(event.source, event.customer_id, key)
        if n % 4 == 0:
            incident.state, incident.acknowledged_by = IncidentState.ACKNOWLEDGED, acked_by
            incident.acknowledged_at = event.created_at + timedelta(minutes=rng.randint(2, 30))
            incident.acknowledged_via = "web"
    db.session.add(incident)
    return incident


def _history(done: Seeded, *, now: datetime, rng: random.Random, suffix: str) -> None:
    """A week of events, each with its notifications and (alerts, failures) its incident, most finished, some
    failed or suppressed."""
    for n in range(70):
        customer = done.customers[n % len(done.customers)]
        source, event_type, severity, title, body = ALERTS[n % len(ALERTS)]
        at = now - timedelta(minutes=rng.randint(5, 7 * 24 * 60))
        firing = n % 5 != 0 or at > now - timedelta(hours=6)  # the older ones mostly resolved
        event = Event(
            customer_id=customer.id,
            source=source,
            event_type=event_type,
            dedup_key=f"demo-{n}-{at.timestamp():.0f}{suffix}",
            status=EventStatus.FIRING if firing else EventStatus.RESOLVED,
            severity=severity,
            title=title.format(n=n % 9 + 1),
            body=body,
            labels={"service": source, "demo": "yes"},
            starts_at=at,
            created_at=at,
        )
        if EVENT_KINDS[event_type].opens_incident:
            event.incident = _incident(event, n, acked_by=_recipients(customer, done.users)[0], rng=rng, now=now)
        db.session.add(event)
        db.session.flush()
        done.events += 1
        for user in _recipients(customer, done.users):
            channel = (Channel.SMS, Channel.EMAIL, Channel.WEB)[(n + user.id) % 3]
            status = FINAL[rng.randrange(len(FINAL))]
            if channel == Channel.WEB and status == S.DELIVERED:
                status = S.SENT
            _notification(done, event, customer, user, channel, status, at=at, rng=rng)
    recent = done.customers[0]
    user = _recipients(recent, done.users)[0]
    for status in (S.PENDING, S.QUEUED, S.DEFERRED):  # the in-flight states, in-app only
        at = now - timedelta(minutes=1)
        event = Event(
            customer_id=recent.id,
            source="generic",
            event_type="job_partial",
            dedup_key=f"demo-{status}-{at.timestamp():.0f}{suffix}",
            status=EventStatus.FIRING,
            severity=Severity.MEDIUM,
            title=f"Nightly export partly failed ({status})",
            body="3 of 40 tables were not exported",
            created_at=at,
        )
        db.session.add(event)
        db.session.flush()
        done.events += 1
        _notification(done, event, recent, user, Channel.WEB, status, at=at, rng=rng)


def _notification(done, event, customer, user, channel, status, *, at: datetime, rng: random.Random) -> None:
    sent = at + timedelta(seconds=rng.randint(1, 20))
    phone = user.phone_numbers[0].number if user.phone_numbers else None
    notification = Notification(
        event_id=event.id,
        user_id=user.id,
        customer_id=customer.id,
        channel=channel,
        recipient={Channel.SMS: phone, Channel.EMAIL: user.email, Channel.WEB: None}[channel],
        subject=event.title if channel == Channel.EMAIL else None,
        body=f"{event.severity.upper()}: {event.title}",
        status=status,
        simulated=channel != Channel.WEB and status in (S.SENT, S.DELIVERED),
        attempts=0 if status in (S.PENDING, S.DEFERRED, S.SUPPRESSED) else 1,
        created_at=at,
        updated_at=sent,
    )
    if channel == Channel.SMS:
        notification.sms_encoding, notification.sms_segments = "GSM-7", 1
    if status in (S.SENT, S.DELIVERED, S.FAILED):
        notification.provider_id = f"SIMdemo{done.notifications:06d}"
        notification.sent_at = sent
    if status == S.DELIVERED:
        notification.delivered_at = sent + timedelta(seconds=rng.randint(2, 40))
    elif status == S.FAILED:
        notification.failed_at = sent
        notification.error_code, notification.error_message = "30003", "Twilio reported the SMS undelivered"
    elif status == S.SUPPRESSED:
        notification.reason = "below minimum severity for this channel"
    elif status == S.DEFERRED:
        notification.reason, notification.deliver_after = "quiet hours", at + timedelta(hours=8)
    db.session.add(notification)
    done.notifications += 1


def _tickets(done: Seeded, *, now: datetime) -> None:
    """On time, at risk (warned), breached, pending and resolved tickets for each customer."""
    shapes = [
        ("Replace failing disk in db-2", Priority.HIGH, TicketStatus.OPEN, timedelta(hours=6), False, False),
        ("VPN drops every hour at branch 4", Priority.URGENT, TicketStatus.OPEN, timedelta(minutes=40), True, False),
        ("Core switch config backup missing", Priority.HIGH, TicketStatus.OPEN, -timedelta(hours=3), True, True),
        ("Renew wildcard certificate", Priority.NORMAL, TicketStatus.PENDING, timedelta(days=2), False, False),
        ("Printer queue stuck on floor 2", Priority.NORMAL, TicketStatus.RESOLVED, -timedelta(days=1), False, False),
    ]
    for customer in done.customers:
        assignee = next(u for u in _recipients(customer, done.users) if u.role == Role.OPERATOR)
        for title, priority, status, due_in, warned, breached in shapes:
            created = now - timedelta(hours=20)
            ticket = Ticket(
                customer_id=customer.id,
                title=title,
                description="Opened for the demo.",
                priority=priority,
                status=status,
                assignee_id=assignee.id,
                due_at=now + due_in,
                warn_at=now + due_in - timedelta(hours=1),
                warned_at=now - timedelta(minutes=20) if warned else None,
                breached_at=now + due_in if breached else None,
                paused_at=now - timedelta(hours=2) if status == TicketStatus.PENDING else None,
                resolved_at=now - timedelta(days=1, hours=2) if status == TicketStatus.RESOLVED else None,
                created_at=created,
                updated_at=created,
            )
            db.session.add(ticket)
            done.tickets += 1


def _heartbeats(done: Seeded, *, now: datetime) -> None:
    for index, customer in enumerate(done.customers):
        for name, every, late in (("nightly-backup", 24 * 3600, index == 0), ("inventory-sync", 900, False)):
            checked = now - timedelta(seconds=every + 3600) if late else now - timedelta(seconds=every // 3)
            heartbeat = Heartbeat(
                customer_id=customer.id,
                name=name,
                interval_seconds=every,
                grace_seconds=600,
                severity=Severity.HIGH,
                token_hash=hash_api_key(f"demo-{customer.id}-{name}-{now.timestamp()}"),
                token_prefix="hb_demo",  # noqa: S106 - a label, the token itself is never stored
                last_checkin_at=checked,
                due_at=checked + timedelta(seconds=every + 600),
            )
            db.session.add(heartbeat)
            done.heartbeats += 1


def _schedule(done: Seeded, *, now: datetime) -> None:
    """Initech's primary on-call: its three staff take weekly turns from Monday 09:00 (London), and one of
    them covers tomorrow night for another (an override), so the timeline shows both."""
    customer = done.customers[2]
    people = [u for u in _recipients(customer, done.users) if u.role != Role.VIEWER]
    monday = (now - timedelta(days=now.weekday() + 14)).date()
    schedule = Schedule(customer_id=customer.id, name="Initech primary on-call", time_zone="Europe/London")
    schedule.layers.append(
        ScheduleLayer(
            position=0,
            name="Weekly",
            rotation=Rotation.WEEKLY,
            rotation_hours=168,
            handoff_time=time(9, 0),
            starts_on=monday,
            member_ids=[u.id for u in people],
            restrictions=[],
        )
    )
    db.session.add(schedule)
    db.session.flush()
    night = (now + timedelta(days=1)).replace(hour=20, minute=0, second=0, microsecond=0)
    db.session.add(
        ScheduleOverride(
            schedule_id=schedule.id,
            user_id=people[-1].id,
            starts_at=night,
            ends_at=night + timedelta(hours=12),
            note="Covering the night shift (demo)",
            created_by_id=people[0].id,
        )
    )
    db.session.flush()
    schedule.next_notice_at = schedules.next_handoff(schedule, now)  # its hand-off notices start at once
