"""Business time: adding working seconds to an instant and measuring them between two instants.

A calendar is working days (0 = Monday), daily hours and holidays in one IANA time zone. Each working
day's window is built in local time and converted to UTC with zoneinfo, so a daylight-saving change
shortens or lengthens the wall-clock night, never the working day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS = 3 * 366  # a calendar with no working day in three years cannot give a deadline


class CalendarError(ValueError):
    """The calendar has no working time to count."""


@dataclass(frozen=True)
class Calendar:
    timezone: str = "UTC"
    working_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    start_minute: int = 9 * 60
    end_minute: int = 17 * 60
    holidays: frozenset[date] = field(default_factory=frozenset)
    always: bool = False  # 24/7: every second counts

    @classmethod
    def twenty_four_seven(cls) -> Calendar:
        return cls(always=True)

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working window of a local `day` in UTC, or None on a day off."""
        if day.weekday() not in self.working_days or day in self.holidays:
            return None
        zone = ZoneInfo(self.timezone)
        start = datetime.combine(day, _clock(self.start_minute), zone)
        end = (
            datetime.combine(day + timedelta(days=1), time(0), zone)
            if self.end_minute >= 1440
            else datetime.combine(day, _clock(self.end_minute), zone)
        )
        return start.astimezone(UTC), end.astimezone(UTC)

    def _windows_from(self, instant: datetime):
        day = instant.astimezone(ZoneInfo(self.timezone)).date()
        for offset in range(MAX_DAYS):
            window = self._window(day + timedelta(days=offset))
            if window is not None:
                yield window
        raise CalendarError("the business calendar has no working hours: add working days")


def _clock(minute: int) -> time:
    return time(minute // 60, minute % 60)


def add(start: datetime, seconds: float, calendar: Calendar) -> datetime:
    """The instant at which `seconds` of working time have passed since `start`."""
    if calendar.always:
        return start + timedelta(seconds=seconds)
    remaining = timedelta(seconds=max(seconds, 0))
    for window_start, window_end in calendar._windows_from(start):
        if window_end <= start:
            continue
        begin = max(window_start, start)
        available = window_end - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise CalendarError("unreachable")  # pragma: no cover  (_windows_from raises first)


def between(start: datetime, end: datetime, calendar: Calendar) -> int:
    """Working seconds from `start` to `end` (0 if end is not after start)."""
    if end <= start:
        return 0
    if calendar.always:
        return int((end - start).total_seconds())
    total = timedelta()
    for window_start, window_end in calendar._windows_from(start):
        if window_start >= end:
            break
        overlap = min(window_end, end) - max(window_start, start)
        if overlap > timedelta():
            total += overlap
    return int(total.total_seconds())
