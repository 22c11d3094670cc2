"""Who is on call: property-based against a step-by-step walk of the hand-offs (the way a person would count
them on a calendar), across DST changes in Europe/Paris and America/New_York, with restrictions and
overlapping overrides; then the batch query and the shifts of a stored schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ops_helpers import count_statements
from webapp.extensions import db
from webapp.models import Rotation, Schedule, ScheduleLayer, ScheduleOverride
from webapp.services import oncall
from webapp.services.oncall import OVERRIDE, Cover, Layer, local_instant

PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
ZONES = [PARIS, NEW_YORK, ZoneInfo("UTC"), ZoneInfo("Australia/Lord_Howe")]  # Lord Howe: a 30-minute DST shift


def _walk(layer: Layer, zone, at: datetime) -> int | None:
    """The reference: count the hand-offs one by one from the anchor (calendar days, local wall clock)."""
    if not layer.member_ids:
        return None
    turn = 0
    if layer.rotation == Rotation.CUSTOM:
        edge = local_instant(layer.starts_on, layer.handoff_time, zone)
        if at < edge:
            return None
        while edge + timedelta(hours=layer.rotation_hours) <= at:
            edge += timedelta(hours=layer.rotation_hours)
            turn += 1
    else:
        period = timedelta(days=7 if layer.rotation == Rotation.WEEKLY else 1)
        day = layer.starts_on
        if at < local_instant(day, layer.handoff_time, zone):
            return None
        while local_instant(day + period, layer.handoff_time, zone) <= at:
            day += period
            turn += 1
    return layer.member_ids[turn % len(layer.member_ids)]


def _in_window(restrictions, local: datetime) -> bool:
    if not restrictions:
        return True
    minute = local.hour * 60 + local.minute + local.second / 60
    for window in restrictions:
        start = int(window["from"][:2]) * 60 + int(window["from"][3:])
        end = int(window["to"][:2]) * 60 + int(window["to"][3:])
        today = local.weekday() in window["days"]
        yesterday = (local.weekday() - 1) % 7 in window["days"]
        if start < end and today and start <= minute < end:
            return True
        if start >= end and ((today and minute >= start) or (yesterday and minute < end)):
            return True
    return False


def _expected(layers, covers, zone, at):
    covering = [c for c in covers if c.starts_at <= at < c.ends_at]
    if covering:
        return sorted(covering, key=lambda c: c.id)[-1].user_id, OVERRIDE
    for layer in sorted(layers, key=lambda layer: -layer.position):
        if _in_window(layer.restrictions, at.astimezone(zone)):
            member = _walk(layer, zone, at)
            if member is not None:
                return member, layer.name
    return None


clocks = st.builds(lambda h, q: f"{h:02d}:{q * 15:02d}", st.integers(0, 23), st.integers(0, 3))
windows = st.fixed_dictionaries(
    {"days": st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True), "from": clocks, "to": clocks}
)
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))


@st.composite
def layers(draw, position: int, *, restricted: bool = True) -> Layer:
    hours = draw(st.integers(0, 23))
    return Layer(
        position=position,
        name=f"layer {position}",
        rotation=draw(st.sampled_from(list(Rotation))),
        rotation_hours=draw(st.integers(1, 200)),
        # 02:30 is skipped in spring and repeated in autumn in both Paris and New York: drawn often
        handoff_time=draw(st.sampled_from([time(2, 30), time(9, 0), time(0, 0), time(hours, 45)])),
        starts_on=draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 6, 30))),
        member_ids=tuple(draw(st.lists(st.integers(1, 50), min_size=1, max_size=6, unique=True))),
        restrictions=tuple(draw(st.lists(windows, max_size=2))) if restricted else (),
    )


@st.composite
def covers(draw) -> list[Cover]:
    found = []
    for n in range(draw(st.integers(0, 4))):
        start = draw(instants)
        found.append(
            Cover(n + 1, draw(st.integers(100, 105)), start, start + timedelta(hours=draw(st.integers(1, 400))))
        )
    return found


@settings(max_examples=400, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    stack=st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True).flatmap(
        lambda positions: st.tuples(*(layers(p) for p in positions))
    ),
    cover=covers(),
    at=instants,
)
def test_the_person_on_call_is_the_one_counted_on_the_calendar(zone, stack, cover, at):
    ordered = sorted(stack, key=lambda layer: -layer.position)
    assert oncall.who(ordered, cover, zone, at) == _expected(stack, cover, zone, at)


@settings(max_examples=150, deadline=None)
@given(zone=st.sampled_from(ZONES), base=layers(0, restricted=False), top=layers(1), at=instants)
def test_never_nobody_once_an_unrestricted_layer_has_started(zone, base, top, at):
    started = local_instant(base.starts_on, base.handoff_time, zone) <= at
    assert (oncall.who([top, base], [], zone, at) is not None) == (
        started or _expected([top], [], zone, at) is not None
    )


@settings(max_examples=120, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    stack=st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True).flatmap(
        lambda positions: st.tuples(*(layers(p) for p in positions))
    ),
    cover=covers(),
    start=instants,
    days=st.integers(1, 35),
    probes=st.lists(st.integers(0, 35 * 86400 - 1), min_size=1, max_size=30),
)
def test_the_timeline_agrees_with_the_instant_answer(zone, stack, cover, start, days, probes):
    """The week/month timeline and the iCal feed come from `timeline`: at any instant inside it, its shift is
    the one person the instant answer names, and it shows nobody exactly where nobody is on call."""
    ordered = sorted(stack, key=lambda layer: -layer.position)
    end = start + timedelta(days=days)
    cut = oncall.compute_shifts(ordered, cover, zone, start, end)
    assert all(a.ends_at <= b.starts_at for a, b in zip(cut, cut[1:], strict=False))
    for seconds in probes:
        at = start + timedelta(seconds=seconds % (days * 86400))
        shown = [(s.user_id, s.layer) for s in cut if s.starts_at <= at < s.ends_at]
        expected = _expected(stack, cover, zone, at)
        assert shown == ([expected] if expected else []), (zone, stack, cover, start, end, at, cut)


def _weekly(members, *, starts_on, handoff=time(9, 0)) -> Layer:
    return Layer(0, "primary", Rotation.WEEKLY, 168, handoff, starts_on, tuple(members), ())


def test_paris_weekly_hand_off_stays_at_nine_local_across_the_spring_change():
    # Summer time starts in Paris on Sunday 29 March 2026: Monday 09:00 is 08:00 UTC before, 07:00 UTC after.
    layer = _weekly([1, 2, 3], starts_on=date(2026, 3, 23))
    at = lambda text: datetime.fromisoformat(text).replace(tzinfo=UTC)  # noqa: E731
    assert oncall.who([layer], [], PARIS, at("2026-03-23T07:59")) is None  # before the first hand-off
    assert oncall.who([layer], [], PARIS, at("2026-03-23T08:00")) == (1, "primary")
    assert oncall.who([layer], [], PARIS, at("2026-03-30T06:59")) == (1, "primary")
    assert oncall.who([layer], [], PARIS, at("2026-03-30T07:00")) == (2, "primary")
    # ... and back to 08:00 UTC after the autumn change (25 October 2026)
    assert oncall.who([layer], [], PARIS, at("2026-10-26T07:59")) == oncall.who(
        [layer], [], PARIS, at("2026-10-19T08:00")
    )
    handoffs = [
        s.starts_at for s in oncall.compute_shifts([layer], [], PARIS, at("2026-03-01T00:00"), at("2026-11-30T00:00"))
    ]
    assert {h.astimezone(PARIS).time() for h in handoffs[1:]} == {time(9, 0)}
    assert {h.astimezone(PARIS).weekday() for h in handoffs[1:]} == {0}


def test_new_york_weekly_hand_off_across_the_autumn_change():
    # Standard time returns in New York on Sunday 1 November 2026: Monday 09:00 is 13:00 UTC, then 14:00 UTC.
    layer = _weekly(["ann", "bob"], starts_on=date(2026, 10, 26))
    at = lambda text: datetime.fromisoformat(text).replace(tzinfo=UTC)  # noqa: E731
    assert oncall.who([layer], [], NEW_YORK, at("2026-10-26T13:00"))[0] == "ann"
    assert oncall.who([layer], [], NEW_YORK, at("2026-11-02T13:59"))[0] == "ann"  # 08:59 EST
    assert oncall.who([layer], [], NEW_YORK, at("2026-11-02T14:00"))[0] == "bob"  # 09:00 EST
    week = oncall.compute_shifts([layer], [], NEW_YORK, at("2026-10-27T00:00"), at("2026-11-10T00:00"))
    assert [(s.user_id, s.starts_at.isoformat()) for s in week] == [
        ("ann", "2026-10-27T00:00:00+00:00"),
        ("bob", "2026-11-02T14:00:00+00:00"),
        ("ann", "2026-11-09T14:00:00+00:00"),
    ]


def test_a_restricted_layer_gives_way_outside_its_hours_and_overlapping_overrides_the_newest_wins():
    base = _weekly([1, 2], starts_on=date(2026, 1, 5))
    office = Layer(
        1,
        "office hours",
        Rotation.DAILY,
        24,
        time(9, 0),
        date(2026, 1, 5),
        (7, 8),
        ({"days": [0, 1, 2, 3, 4], "from": "09:00", "to": "18:00"},),
    )
    at = lambda text: datetime.fromisoformat(text).replace(tzinfo=UTC)  # noqa: E731
    stack = [office, base]
    assert oncall.who(stack, [], PARIS, at("2026-01-05T08:30")) == (7, "office hours")  # Monday 09:30 CET
    assert oncall.who(stack, [], PARIS, at("2026-01-06T08:30")) == (8, "office hours")
    assert oncall.who(stack, [], PARIS, at("2026-01-05T17:00")) == (1, "primary")  # 18:00 CET: closed
    assert oncall.who(stack, [], PARIS, at("2026-01-10T10:00")) == (1, "primary")  # Saturday
    night = Cover(1, 40, at("2026-01-06T19:00"), at("2026-01-07T07:00"))  # "Alice covers Tuesday night"
    later = Cover(2, 41, at("2026-01-06T23:00"), at("2026-01-07T01:00"))  # added after, overlapping it
    assert oncall.who(stack, [night, later], PARIS, at("2026-01-06T22:00")) == (40, OVERRIDE)
    assert oncall.who(stack, [night, later], PARIS, at("2026-01-06T23:30")) == (41, OVERRIDE)
    assert oncall.who(stack, [night, later], PARIS, at("2026-01-07T01:00")) == (40, OVERRIDE)
    assert oncall.who(stack, [night, later], PARIS, at("2026-01-07T07:00")) == (1, "primary")


def _schedule(customer_id, members, *, zone="Europe/Paris", starts_on=date(2026, 1, 5)) -> Schedule:
    schedule = Schedule(customer_id=customer_id, name="Primary", time_zone=zone)
    schedule.layers.append(
        ScheduleLayer(
            position=0,
            name="weekly",
            rotation=Rotation.WEEKLY,
            rotation_hours=168,
            handoff_time=time(9, 0),
            starts_on=starts_on,
            member_ids=members,
            restrictions=[],
        )
    )
    db.session.add(schedule)
    db.session.flush()
    return schedule


def test_on_call_user_ids_answers_many_schedules_in_a_few_statements(app, make_user, customer):
    alice, bob, carol = make_user(name="Alice"), make_user(name="Bob"), make_user(name="Carol")
    first = _schedule(customer.id, [alice.id, bob.id])
    second = _schedule(customer.id, [carol.id], zone="America/New_York")
    empty = Schedule(customer_id=customer.id, name="No layers", time_zone="UTC")
    db.session.add(empty)
    at = datetime(2026, 1, 13, 12, 0, tzinfo=UTC)  # Tuesday of week 2: Bob
    db.session.add(
        ScheduleOverride(
            schedule_id=second.id, user_id=alice.id, starts_at=at - timedelta(hours=1), ends_at=at + timedelta(hours=1)
        )
    )
    db.session.add(
        ScheduleOverride(
            schedule_id=second.id, user_id=bob.id, starts_at=at - timedelta(days=30), ends_at=at - timedelta(days=29)
        )
    )
    db.session.commit()
    ids = [first.id, second.id, empty.id, 999_999]
    with count_statements() as statements:
        answer = oncall.on_call_user_ids(ids, at)
    assert answer == {first.id: [bob.id], second.id: [alice.id], empty.id: [], 999_999: []}
    assert len(statements) <= 2
    assert oncall.on_call_user_ids([], at) == {}


def test_shifts_of_a_stored_schedule_include_its_overrides(app, make_user, customer):
    alice, bob, carol = make_user(name="Alice"), make_user(name="Bob"), make_user(name="Carol")
    schedule = _schedule(customer.id, [alice.id, bob.id])
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # Monday 09:00 CET
    db.session.add(
        ScheduleOverride(
            schedule_id=schedule.id,
            user_id=carol.id,
            starts_at=start + timedelta(days=1),
            ends_at=start + timedelta(days=1, hours=12),
        )
    )
    db.session.commit()
    found = oncall.shifts(schedule, start, start + timedelta(days=14))
    assert [(s.user_id, s.layer, s.starts_at - start, s.ends_at - start) for s in found] == [
        (alice.id, "weekly", timedelta(0), timedelta(days=1)),
        (carol.id, OVERRIDE, timedelta(days=1), timedelta(days=1, hours=12)),
        (alice.id, "weekly", timedelta(days=1, hours=12), timedelta(days=7)),
        (bob.id, "weekly", timedelta(days=7), timedelta(days=14)),
    ]
