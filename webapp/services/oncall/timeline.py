"""The geometry of a schedule's week or month timeline, drawn by the page as SVG (no script).

One row for the final schedule (who is really paged), one per layer on its own, one for the overrides; each
shift a bar placed by its share of the window, with the person's name and the local times in its title.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from webapp.extensions import db
from webapp.models import Schedule, ScheduleOverride, User, utcnow
from webapp.services.oncall import OVERRIDE, Cover, Layer, Shift, compute_shifts, local_instant, shifts, zone_of

WIDTH = 1000  # SVG user units across the window
VIEWS = ("week", "month")
PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e")


@dataclass
class Bar:
    x: float
    width: float
    name: str
    title: str
    color: str


@dataclass
class Row:
    label: str
    bars: list[Bar]


@dataclass
class Timeline:
    view: str
    first_day: date
    last_day: date
    previous: date
    following: date
    ticks: list[tuple[float, str]]
    rows: list[Row]
    now_x: float | None


def window(view: str, day: date) -> tuple[date, date]:
    """The first day of the week (Monday) or month holding `day`, and the first day after the window."""
    if view == "month":
        first = day.replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1)
    first = day - timedelta(days=day.weekday())
    return first, first + timedelta(days=7)


def build(schedule: Schedule, *, view: str = "week", day: date | None = None, now: datetime | None = None) -> Timeline:
    now = now or utcnow()
    zone = zone_of(schedule.time_zone)
    view = view if view in VIEWS else "week"
    first, after = window(view, day or now.astimezone(zone).date())
    start, end = local_instant(first, time(0), zone), local_instant(after, time(0), zone)
    span = (end - start).total_seconds()

    def x_of(at: datetime) -> float:
        return round(WIDTH * (at - start).total_seconds() / span, 2)

    layers = sorted((Layer.of(layer) for layer in schedule.layers), key=lambda layer: layer.position, reverse=True)
    overrides = [
        Cover(o.id, o.user_id, o.starts_at, o.ends_at)
        for o in db.session.scalars(
            db.select(ScheduleOverride).where(
                ScheduleOverride.schedule_id == schedule.id,
                ScheduleOverride.ends_at > start,
                ScheduleOverride.starts_at < end,
            )
        )
    ]
    rows_of_shifts = [("Final schedule", shifts(schedule, start, end))]
    rows_of_shifts += [(f"Layer: {layer.name}", compute_shifts([layer], [], zone, start, end)) for layer in layers]
    rows_of_shifts.append(
        (
            "Overrides",
            [Shift(c.user_id, max(c.starts_at, start), min(c.ends_at, end), OVERRIDE) for c in sorted(overrides)],
        )
    )
    user_ids = {s.user_id for _, row in rows_of_shifts for s in row}
    names = (
        dict(db.session.execute(db.select(User.id, User.name).where(User.id.in_(user_ids))).all()) if user_ids else {}
    )
    order = {user_id: n for n, user_id in enumerate(sorted(user_ids))}

    def bar(shift: Shift) -> Bar:
        name = names.get(shift.user_id, f"user {shift.user_id}")
        span_text = (
            f"{shift.starts_at.astimezone(zone):%a %d %b %H:%M} – {shift.ends_at.astimezone(zone):%a %d %b %H:%M}"
        )
        source = "override" if shift.layer == OVERRIDE else shift.layer
        return Bar(
            x=x_of(shift.starts_at),
            width=max(round(x_of(shift.ends_at) - x_of(shift.starts_at), 2), 0.5),
            name=name,
            title=f"{name}: {span_text} ({source})",
            color=PALETTE[order[shift.user_id] % len(PALETTE)],
        )

    days = [first + timedelta(days=n) for n in range((after - first).days)]
    ticks = [(x_of(local_instant(d, time(0), zone)), d.strftime("%a %d" if view == "week" else "%d")) for d in days]
    previous = window(view, first - timedelta(days=1))[0]
    return Timeline(
        view=view,
        first_day=first,
        last_day=after - timedelta(days=1),
        previous=previous,
        following=after,
        ticks=ticks,
        rows=[Row(label, [bar(s) for s in row]) for label, row in rows_of_shifts],
        now_x=x_of(now) if start <= now < end else None,
    )
