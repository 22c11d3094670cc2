"""Hand-off notices: when a shift starts, the incoming person is told (in-app and email, per their
preferences), once per hand-off even with several schedulers.

Each schedule keeps `next_notice_at`, the next instant its on-call person may change (services.oncall
.schedules keeps it current on every change). The sweep (`sweep`, run by the periodic job
`notify_handoffs`) moves it on with a conditional UPDATE (`WHERE next_notice_at = <the value read>`): of two
sweeps racing, one moves it and tells; the other's UPDATE matches no row. The notice is an Event (source
"schedule", type "shift_start", dedup key per schedule and instant: a second insert is a no-op) routed to
that one person as its audience, so the delivery log records the decision (sent, held by quiet hours,
suppressed with the reason) as for any other notification.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from webapp.extensions import db
from webapp.models import EVENT_DEDUP_KEY, Event, EventStatus, Schedule, Severity, utcnow
from webapp.services import bulk
from webapp.services.oncall import OVERRIDE, on_call_user_ids, shifts, zone_of
from webapp.services.oncall.schedules import LOOKAHEAD, next_handoff
from webapp.services.routing import decisions

SOURCE = "schedule"  # kinds.INTERNAL_ORIGINS
EVENT_TYPE = "shift_start"  # kinds.EVENT_KINDS
STALE = timedelta(hours=1)  # a hand-off found later than this (the workers were down) is not announced any more
BATCH = 200


def sweep(*, now: datetime | None = None) -> list[int]:
    """Tell the incoming person of every schedule whose hand-off is due; returns the ids of the events made.
    Flushes, never commits."""
    now = now or utcnow()
    due = db.session.execute(
        db.select(Schedule.id, Schedule.next_notice_at)
        .where(Schedule.next_notice_at <= now)
        .order_by(Schedule.next_notice_at)
        .limit(BATCH)
    ).all()
    made = []
    for schedule_id, at in due:
        schedule = db.session.get(Schedule, schedule_id)
        claimed = db.session.execute(
            update(Schedule)
            .where(Schedule.id == schedule_id, Schedule.next_notice_at == at)
            .values(next_notice_at=next_handoff(schedule, max(at, now)))
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1 or now - at > STALE:
            continue
        event_id = _tell(schedule, at, now=now)
        if event_id is not None:
            made.append(event_id)
    return made


def _tell(schedule: Schedule, at: datetime, *, now: datetime) -> int | None:
    """The notice for the shift starting at `at`, if someone new takes over then."""
    incoming = on_call_user_ids([schedule.id], at)[schedule.id]
    if not incoming or incoming == on_call_user_ids([schedule.id], at - timedelta(seconds=1))[schedule.id]:
        return None
    user_id = incoming[0]
    ahead = shifts(schedule, at, at + LOOKAHEAD)
    shift = ahead[0] if ahead and ahead[0].user_id == user_id else None
    zone = zone_of(schedule.time_zone)
    until = f" until {shift.ends_at.astimezone(zone):%a %d %b %H:%M}" if shift else ""
    how = "as an override" if shift and shift.layer == OVERRIDE else f"({shift.layer})" if shift else ""
    row = {
        "source": SOURCE,
        "event_type": EVENT_TYPE,
        "dedup_key": f"schedule-{schedule.id}@{at.isoformat()}",
        "customer_id": schedule.customer_id,
        "status": EventStatus.INFO,
        "severity": Severity.INFO,
        "title": f"You are on call for {schedule.name}"[:300],
        "body": (
            f"Your shift on {schedule.name} {how} starts {at.astimezone(zone):%a %d %b %H:%M}{until} "
            f"({schedule.time_zone}). You are told because you take over from the previous person."
        ),
        "labels": {"schedule": schedule.name},
        "data": {"schedule_id": schedule.id, "user_id": user_id, "reason": "on-call hand-off"},
        "starts_at": at,
        "ends_at": shift.ends_at if shift else None,
        "created_at": now,
    }
    stored = bulk.insert_returning(Event, [row], Event.id, ignore_conflicts_on=EVENT_DEDUP_KEY)
    if not stored:
        return None
    event = db.session.get(Event, stored[0].id)
    decisions.route([event], now=now, audience=[user_id])
    return event.id
