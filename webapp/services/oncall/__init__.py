"""Who is on call: arithmetic from each layer's anchor, never a walk over the schedule's history.

At an instant t, an override covering t wins (the newest one, if several overlap); otherwise the highest layer
whose restrictions admit t and that has started; within a layer, the member is counted from the anchor:
daily and weekly hand-offs happen at a local wall-clock time in the schedule's zone (a Monday 09:00 hand-off
stays 09:00 across DST), custom rotations every `rotation_hours` of absolute time. So asking costs the same
for a schedule made last week and one made five years ago, and nothing is materialised per shift.

`on_call_user_ids` answers for many schedules at once in two queries (routing, escalation); `shifts` cuts a
window into who-covers-what (timeline, iCal, hand-off notices).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from webapp.extensions import db
from webapp.models import Rotation, Schedule, ScheduleLayer, ScheduleOverride

OVERRIDE = "override"  # Shift.layer of an override's shift
_CHUNK = 500  # ids per IN (...) list: well under every backend's limit on bound parameters
_LAYER_COLUMNS = tuple(
    getattr(ScheduleLayer, name)
    for name in (
        "schedule_id",
        "position",
        "name",
        "rotation",
        "rotation_hours",
        "handoff_time",
        "starts_on",
        "member_ids",
        "restrictions",
    )
)


class Shift(NamedTuple):
    user_id: int
    starts_at: datetime
    ends_at: datetime
    layer: str  # the layer's name, or "override"


@dataclass(frozen=True)
class Layer:
    """The values of a ScheduleLayer the computation needs (the batch reads columns, not ORM objects)."""

    position: int
    name: str
    rotation: Rotation
    rotation_hours: int
    handoff_time: time
    starts_on: date
    member_ids: tuple[int, ...]
    restrictions: tuple[dict, ...]

    @classmethod
    def of(cls, layer) -> Layer:
        """From a ScheduleLayer, or a row of its columns."""
        return cls(
            position=layer.position,
            name=layer.name,
            rotation=Rotation(layer.rotation),
            rotation_hours=layer.rotation_hours,
            handoff_time=layer.handoff_time,
            starts_on=layer.starts_on,
            member_ids=tuple(layer.member_ids or ()),
            restrictions=tuple(layer.restrictions or ()),
        )


class Cover(NamedTuple):
    """An override as the computation sees it."""

    id: int
    user_id: int
    starts_at: datetime
    ends_at: datetime


def zone_of(name: str | None) -> tzinfo:
    """The schedule's zone; an unknown name (validated on write, so only a tampered row) counts as UTC."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_instant(day: date, clock: time, zone: tzinfo, *, fold: int = 0) -> datetime:
    """`day` at wall-clock `clock` in `zone`, in UTC. A clock time skipped by DST resolves as zoneinfo does
    (fold 0: the offset before the change); a repeated one to its first occurrence unless fold=1."""
    return datetime.combine(day, clock.replace(tzinfo=None), tzinfo=zone).replace(fold=fold).astimezone(UTC)


def parse_clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def member_at(layer: Layer, zone: tzinfo, at: datetime) -> int | None:
    """The member of `layer` on duty at `at` (restrictions aside), or None before its first hand-off."""
    if not layer.member_ids:
        return None
    anchor = local_instant(layer.starts_on, layer.handoff_time, zone)
    if at < anchor:
        return None
    if layer.rotation == Rotation.CUSTOM:
        index = (at - anchor) // timedelta(hours=layer.rotation_hours)
    else:
        day = at.astimezone(zone).date()
        if at < local_instant(day, layer.handoff_time, zone):
            day -= timedelta(days=1)  # before today's hand-off: yesterday's person is still on
        index = (day - layer.starts_on).days // (7 if layer.rotation == Rotation.WEEKLY else 1)
    return layer.member_ids[index % len(layer.member_ids)]


def admits(restrictions: Sequence[dict], local: datetime) -> bool:
    """Whether a layer restricted to these local windows covers the local time `local` (no windows: always).
    A window whose `to` is not after its `from` runs past midnight into the next day."""
    if not restrictions:
        return True
    clock, weekday = local.time().replace(tzinfo=None), local.weekday()
    for window in restrictions:
        start, end, days = parse_clock(window["from"]), parse_clock(window["to"]), window["days"]
        if start < end:
            if weekday in days and start <= clock < end:
                return True
        elif (weekday in days and clock >= start) or ((weekday - 1) % 7 in days and clock < end):
            return True
    return False


def who(layers: Sequence[Layer], covers: Sequence[Cover], zone: tzinfo, at: datetime) -> tuple[int, str] | None:
    """(user id, layer name or "override") on call at `at`; `layers` highest first."""
    covering = [c for c in covers if c.starts_at <= at < c.ends_at]
    if covering:
        return max(covering, key=lambda c: c.id).user_id, OVERRIDE
    local = at.astimezone(zone)
    for layer in layers:
        if admits(layer.restrictions, local):
            user_id = member_at(layer, zone, at)
            if user_id is not None:
                return user_id, layer.name
    return None


def on_call_user_ids(schedule_ids: Iterable[int], at: datetime) -> dict[int, list[int]]:
    """Who is on call at `at` for each schedule: {schedule id: [user id]} ([] when nobody, or no such schedule).

    Two queries per 500 schedules (their layers, the overrides covering `at`), whatever their age.
    """
    ids = sorted(set(schedule_ids))
    layers: dict[int, list[Layer]] = defaultdict(list)
    zones: dict[int, tzinfo] = {}
    covers: dict[int, list[Cover]] = defaultdict(list)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = db.session.execute(
            db.select(Schedule.time_zone, *_LAYER_COLUMNS)
            .join(ScheduleLayer.schedule)
            .where(ScheduleLayer.schedule_id.in_(chunk))
        )
        for row in rows:  # plain rows, not ORM objects: nothing to track, and the same attribute names
            zones.setdefault(row.schedule_id, zone_of(row.time_zone))
            layers[row.schedule_id].append(Layer.of(row))
        overrides = db.session.execute(
            db.select(
                ScheduleOverride.schedule_id,
                ScheduleOverride.id,
                ScheduleOverride.user_id,
                ScheduleOverride.starts_at,
                ScheduleOverride.ends_at,
            ).where(
                ScheduleOverride.schedule_id.in_(chunk),
                ScheduleOverride.ends_at > at,
                ScheduleOverride.starts_at <= at,
            )
        )
        for schedule_id, *cover in overrides:
            covers[schedule_id].append(Cover(*cover))
    result: dict[int, list[int]] = {}
    for schedule_id in ids:
        ordered = sorted(layers.get(schedule_id, ()), key=lambda layer: layer.position, reverse=True)
        found = who(ordered, covers.get(schedule_id, ()), zones.get(schedule_id, UTC), at)
        result[schedule_id] = [found[0]] if found else []
    return result


def _cuts(layers: Sequence[Layer], zone: tzinfo, start: datetime, end: datetime) -> set[datetime]:
    """Every instant in [start, end] where a layer may hand off or a restriction may open or close: hand-offs,
    local midnights (weekdays change), restriction edges (both occurrences of a repeated hour) and the DST
    changes themselves (the wall clock jumps)."""
    first, last = start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date() + timedelta(days=1)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    cuts: set[datetime] = set()
    for day in days:
        midnight = local_instant(day, time(0), zone)
        following = local_instant(day + timedelta(days=1), time(0), zone)
        cuts.add(midnight)
        if midnight.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            cuts |= _offset_changes(midnight, following, zone)
    for layer in layers:
        if layer.rotation == Rotation.CUSTOM:
            anchor = local_instant(layer.starts_on, layer.handoff_time, zone)
            step = timedelta(hours=layer.rotation_hours)
            k = max(0, math.floor((start - anchor) / step))
            while anchor + k * step <= end:
                cuts.add(anchor + k * step)
                k += 1
        else:
            period = 7 if layer.rotation == Rotation.WEEKLY else 1
            cuts |= {
                local_instant(day, layer.handoff_time, zone)
                for day in days
                if day >= layer.starts_on and (day - layer.starts_on).days % period == 0
            }
        for window in layer.restrictions:
            for clock in (parse_clock(window["from"]), parse_clock(window["to"])):
                cuts |= {local_instant(day, clock, zone, fold=fold) for day in days for fold in (0, 1)}
    return {cut for cut in cuts if start < cut < end}


def _offset_changes(start: datetime, end: datetime, zone: tzinfo) -> set[datetime]:
    """The instants between two local midnights where the zone's offset changes (zones change on the quarter
    hour)."""
    found, step, at = set(), timedelta(minutes=15), start
    while at < end:
        if (at + step).astimezone(zone).utcoffset() != at.astimezone(zone).utcoffset():
            found.add(at + step)
        at += step
    return found


def shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """Who covers what between `start` and `end` (clipped to them), in order; gaps where nobody is on call are
    left out, and a person's consecutive turns from the same layer make one shift."""
    if end <= start:
        return []
    covers = [
        Cover(o.id, o.user_id, o.starts_at, o.ends_at)
        for o in db.session.scalars(
            db.select(ScheduleOverride).where(
                ScheduleOverride.schedule_id == schedule.id,
                ScheduleOverride.ends_at > start,
                ScheduleOverride.starts_at < end,
            )
        )
    ]
    layers = sorted((Layer.of(layer) for layer in schedule.layers), key=lambda layer: layer.position, reverse=True)
    return compute_shifts(layers, covers, zone_of(schedule.time_zone), start, end)


def compute_shifts(
    layers: Sequence[Layer], covers: Sequence[Cover], zone: tzinfo, start: datetime, end: datetime
) -> list[Shift]:
    """`shifts` without the database: `layers` highest first, `covers` the overrides that reach the window."""
    cuts = _cuts(layers, zone, start, end)
    cuts |= {edge for c in covers for edge in (c.starts_at, c.ends_at) if start < edge < end}
    found: list[Shift] = []
    for a, b in pairwise(sorted(cuts | {start, end})):
        current = who(layers, covers, zone, a)
        if current is None:
            continue
        if found and found[-1].ends_at == a and (found[-1].user_id, found[-1].layer) == current:
            found[-1] = found[-1]._replace(ends_at=b)
        else:
            found.append(Shift(current[0], a, b, current[1]))
    return found
