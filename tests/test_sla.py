"""The SLA engine with a controlled clock: deadlines, pause, recomputation, warnings and breaches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from webapp.extensions import db
from webapp.models import BusinessCalendar, Event, Holiday, Priority, SlaPolicy, TicketStatus, TimelineEntry
from webapp.services.tickets import business_time, sla, tickets
from webapp.services.tickets.business_time import Calendar

NY = "America/New_York"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def policy(customer):
    def _make(priority=Priority.NORMAL, **fields) -> SlaPolicy:
        fields.setdefault("resolution_minutes", 240)
        row = SlaPolicy(customer_id=customer.id, priority=priority, **fields)
        db.session.add(row)
        db.session.commit()
        return row

    return _make


def business_calendar(customer, *, holidays=()) -> None:
    db.session.add(BusinessCalendar(customer_id=customer.id, timezone=NY, working_days=[0, 1, 2, 3, 4]))
    db.session.add_all(Holiday(customer_id=customer.id, day=day, name="Holiday") for day in holidays)
    db.session.commit()


def test_due_date_on_a_24_7_policy_counts_every_hour(app, customer, policy):
    policy(resolution_minutes=240, warning_minutes=60)
    ticket = tickets.create(customer=customer, title="Disk full", now=at("2026-03-07T22:00:00"))  # a Saturday
    assert ticket.due_at == at("2026-03-08T02:00:00")
    assert ticket.warn_at == at("2026-03-08T01:00:00")
    assert "Deadline none → 2026-03-08 02:00 UTC: SLA policy for normal priority" in [e.body for e in ticket.timeline]


def test_business_hours_skip_the_weekend(app, customer, policy):
    business_calendar(customer)
    policy(resolution_minutes=240, business_hours_only=True)
    # Friday 2026-02-13 15:00 New York (EST, UTC-5): 2 hours left on Friday, 2 more on Monday from 09:00.
    ticket = tickets.create(customer=customer, title="VPN down", now=at("2026-02-13T20:00:00"))
    assert ticket.due_at == at("2026-02-16T16:00:00")  # Monday 11:00 EST


def test_business_hours_skip_a_holiday(app, customer, policy):
    business_calendar(customer, holidays=[date(2026, 2, 16)])  # Presidents' Day, a Monday
    policy(resolution_minutes=240, business_hours_only=True)
    ticket = tickets.create(customer=customer, title="VPN down", now=at("2026-02-13T20:00:00"))
    assert ticket.due_at == at("2026-02-17T16:00:00")  # Tuesday 11:00 EST


def test_business_hours_across_the_daylight_saving_change(app, customer, policy):
    business_calendar(customer)
    policy(resolution_minutes=240, business_hours_only=True)
    # Friday 2026-03-06 15:00 EST; clocks go forward on Sunday 8 March: Monday 11:00 is EDT (UTC-4).
    ticket = tickets.create(customer=customer, title="VPN down", now=at("2026-03-06T20:00:00"))
    assert ticket.due_at == at("2026-03-09T15:00:00")
    calendar = Calendar(timezone=NY)
    assert business_time.between(at("2026-03-06T20:00:00"), ticket.due_at, calendar) == 4 * 3600


def test_customer_time_zone_without_a_calendar_defaults_to_weekdays_nine_to_five(app, make_customer, policy):
    customer = make_customer("Tokyo Ltd", timezone="Asia/Tokyo")
    db.session.add(
        SlaPolicy(customer_id=customer.id, priority=Priority.HIGH, resolution_minutes=60, business_hours_only=True)
    )
    db.session.commit()
    # Saturday 2026-05-02 10:00 Tokyo: the clock starts Monday 09:00 JST (00:00 UTC).
    ticket = tickets.create(customer=customer, title="x", priority=Priority.HIGH, now=at("2026-05-02T01:00:00"))
    assert ticket.due_at == at("2026-05-04T01:00:00")


def test_pending_pauses_the_clock_and_reopening_moves_the_deadline(app, customer, policy):
    policy(resolution_minutes=240)
    ticket = tickets.create(customer=customer, title="Need logs", now=at("2026-04-01T08:00:00"))
    assert ticket.due_at == at("2026-04-01T12:00:00")
    tickets.change_status(ticket, TicketStatus.PENDING, now=at("2026-04-01T09:00:00"))
    tickets.change_status(ticket, TicketStatus.OPEN, now=at("2026-04-01T10:30:00"))
    assert ticket.paused_seconds == 90 * 60
    assert ticket.due_at == at("2026-04-01T13:30:00")
    bodies = [e.body for e in ticket.timeline]
    assert "SLA clock paused (waiting on the customer)" in bodies
    assert "Deadline 2026-04-01 12:00 UTC → 2026-04-01 13:30 UTC: clock resumed after 1:30:00 paused" in bodies
    # Resolving stops the clock; reopening resumes it.
    tickets.change_status(ticket, TicketStatus.RESOLVED, now=at("2026-04-01T11:00:00"))
    tickets.change_status(ticket, TicketStatus.OPEN, now=at("2026-04-01T11:30:00"))
    assert ticket.due_at == at("2026-04-01T14:00:00")


def test_pause_counts_business_time_only(app, customer, policy):
    business_calendar(customer)
    policy(resolution_minutes=240, business_hours_only=True)
    ticket = tickets.create(customer=customer, title="x", now=at("2026-02-12T14:00:00"))  # Thu 09:00 EST
    assert ticket.due_at == at("2026-02-12T18:00:00")
    tickets.change_status(ticket, TicketStatus.PENDING, now=at("2026-02-12T15:00:00"))  # Thu 10:00
    tickets.change_status(ticket, TicketStatus.OPEN, now=at("2026-02-13T15:00:00"))  # Fri 10:00: 8 business hours
    assert ticket.paused_seconds == 8 * 3600
    assert ticket.due_at == at("2026-02-13T18:00:00")  # Fri 13:00 EST


def test_priority_change_recomputes_and_paused_time_survives(app, customer, policy):
    policy(Priority.NORMAL, resolution_minutes=480)
    urgent = policy(Priority.URGENT, resolution_minutes=60)
    ticket = tickets.create(customer=customer, title="x", now=at("2026-04-01T08:00:00"))
    tickets.change_status(ticket, TicketStatus.PENDING, now=at("2026-04-01T08:10:00"))
    tickets.change_status(ticket, TicketStatus.OPEN, now=at("2026-04-01T08:40:00"))  # 30 min paused
    tickets.set_priority(ticket, Priority.URGENT, now=at("2026-04-01T08:45:00"))
    assert ticket.due_at == at("2026-04-01T09:30:00")  # 08:00 + 60 min + 30 min paused
    assert "Deadline 2026-04-01 16:30 UTC → 2026-04-01 09:30 UTC: priority changed normal → urgent" in [
        e.body for e in ticket.timeline
    ]
    urgent.resolution_minutes = 120
    changed = sla.recompute_customer(
        customer.id, Priority.URGENT, reason="policy changed", now=at("2026-04-01T09:00:00")
    )
    assert changed == 1 and ticket.due_at == at("2026-04-01T10:30:00")


def _sla_events(kind: str) -> list[Event]:
    return list(db.session.scalars(db.select(Event).where(Event.event_type == kind).order_by(Event.id)))


def test_warning_then_breach_once_each_and_again_for_a_later_deadline(app, customer, policy, runner):
    policy(resolution_minutes=120, warning_minutes=60)
    ticket = tickets.create(customer=customer, title="DB slow", now=at("2026-04-01T08:00:00"))
    db.session.commit()
    assert sla.check_sla(now=at("2026-04-01T08:59:00")).warned == []
    first = sla.check_sla(now=at("2026-04-01T09:00:00"))
    assert first.warned == [ticket.id] and first.breached == []
    assert sla.check_sla(now=at("2026-04-01T09:30:00")).warned == []  # once per deadline
    breach = sla.check_sla(now=at("2026-04-01T10:00:00"))
    assert breach.breached == [ticket.id] and breach.warned == []
    assert sla.check_sla(now=at("2026-04-01T10:05:00")).breached == []
    db.session.commit()
    warnings, breaches = _sla_events("sla_warning"), _sla_events("sla_breach")
    assert [(e.ticket_id, e.customer_id) for e in warnings] == [(ticket.id, customer.id)]
    assert [e.title for e in breaches] == [f"{ticket.key} missed its SLA: DB slow"]
    kinds = db.session.scalars(db.select(TimelineEntry.body).where(TimelineEntry.kind == "sla")).all()
    assert kinds == ["SLA warning: due 2026-04-01 10:00 UTC", "SLA breached: due 2026-04-01 10:00 UTC"]
    # A deadline moved later (the policy got longer) is warned again for the new deadline.
    db.session.scalar(db.select(SlaPolicy)).resolution_minutes = 240
    sla.recompute_customer(customer.id, Priority.NORMAL, reason="policy changed", now=at("2026-04-01T10:10:00"))
    db.session.commit()
    again = sla.check_sla(now=at("2026-04-01T11:00:00"))
    assert again.warned == [ticket.id]
    db.session.commit()
    assert len(_sla_events("sla_warning")) == 2


def test_pending_tickets_are_not_warned(app, customer, policy):
    policy(resolution_minutes=120, warning_minutes=60)
    ticket = tickets.create(customer=customer, title="x", now=at("2026-04-01T08:00:00"))
    tickets.change_status(ticket, TicketStatus.PENDING, now=at("2026-04-01T08:30:00"))
    assert sla.check_sla(now=at("2026-04-01T12:00:00")).breached == []


def test_ticket_events_are_routed_with_the_ticket(app, customer, make_user, policy):
    operator = make_user("operator", name="Olga")
    ticket = tickets.create(customer=customer, title="Backups failing", now=at("2026-04-01T08:00:00"))
    tickets.assign(ticket, operator, now=at("2026-04-01T08:01:00"))
    tickets.change_status(ticket, TicketStatus.RESOLVED, now=at("2026-04-01T08:02:00"))
    db.session.commit()
    rows = db.session.execute(
        db.select(Event.event_type, Event.ticket_id, Event.title).where(Event.source == "ticket").order_by(Event.id)
    ).all()
    assert [(r.event_type, r.ticket_id) for r in rows] == [
        ("ticket_created", ticket.id),
        ("ticket_updated", ticket.id),
        ("ticket_updated", ticket.id),
    ]
    assert rows[1].title == f"{ticket.key} assigned to olga: Backups failing"


def test_flask_sla_check_prints_what_it_did(app, customer, policy, runner):
    policy(resolution_minutes=60, warning_minutes=30)
    tickets.create(customer=customer, title="x", now=datetime.now(UTC) - timedelta(minutes=45))
    db.session.commit()
    result = runner.invoke(args=["sla", "check"])
    assert result.exit_code == 0, result.output
    assert "warned 1, breached 0" in result.output
    assert "OPS-" in result.output


def test_the_periodic_job_runs_the_sweep_through_the_queue(app, customer, policy, drain):
    from webapp.jobs import PERIODIC_JOBS, check_sla
    from webapp.queue import PERIODIC, get_queue

    assert [(p.name, p.func, p.every_seconds) for p in PERIODIC_JOBS if p.name == "check-sla"] == [
        ("check-sla", check_sla, 60)
    ]
    policy(resolution_minutes=60, warning_minutes=30)
    ticket = tickets.create(customer=customer, title="x", now=datetime.now(UTC) - timedelta(minutes=90))
    db.session.commit()
    get_queue(app).enqueue_many("webapp.jobs.check_sla", [()], queue=PERIODIC)
    drain()
    assert ticket.breached_at is not None
    assert [e.ticket_id for e in _sla_events("sla_breach")] == [ticket.id]
