"""A person's iCal feed of their shifts (/schedules/ical/<token>.ics), so calendars show them.

The token in the address is the only credential a calendar app can send: it is a secret, kept as its sha256
(never readable again: regenerating shows a new one once and ends the old), found by that hash and compared
in constant time. The feed covers the schedules the person sees, from a week back to WEEKS weeks ahead, as
RFC 5545 text: CRLF lines folded at 75 octets, escaped text, times in UTC, a UID that stays the same for the
same shift from one fetch to the next.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from webapp import tenancy
from webapp.extensions import db
from webapp.models import Schedule, ScheduleFeed, ScheduleLayer, ScheduleOverride, User, utcnow
from webapp.security import constant_time_equals, hash_api_key
from webapp.services import audit
from webapp.services.oncall import OVERRIDE, shifts

TOKEN_PREFIX = "ical_"  # noqa: S105 - marks a feed token, not a secret
WEEKS = 8  # how far ahead the feed reaches
BEHIND = timedelta(days=7)  # and how far back (a shift under way keeps its real start)


def has_feed(user: User) -> bool:
    return db.session.scalar(db.select(ScheduleFeed.id).where(ScheduleFeed.user_id == user.id)) is not None


def regenerate(user: User) -> str:
    """A new feed address for `user` (the old one stops working); the token is returned once, never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    feed = db.session.scalar(db.select(ScheduleFeed).where(ScheduleFeed.user_id == user.id))
    if feed is None:
        feed = ScheduleFeed(user_id=user.id)
        db.session.add(feed)
    feed.token_hash = hash_api_key(token)
    feed.created_at = utcnow()
    db.session.flush()
    audit.record(actor=user, action="schedule.feed.regenerate", target=user, summary=user.email)
    return token


def user_for_token(token: str) -> User | None:
    """The active person whose feed token this is, else None."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    digest = hash_api_key(token)
    feed = db.session.scalar(db.select(ScheduleFeed).where(ScheduleFeed.token_hash == digest))
    if feed is None or not constant_time_equals(digest, feed.token_hash):
        return None
    user = db.session.get(User, feed.user_id)
    return user if user is not None and user.is_active else None


def _schedules_of(user: User, start: datetime, end: datetime) -> list[Schedule]:
    """The schedules `user` sees that have them in a layer, or in an override within the window."""
    ids = {
        schedule_id
        for schedule_id, members in db.session.execute(db.select(ScheduleLayer.schedule_id, ScheduleLayer.member_ids))
        if user.id in (members or [])
    }
    ids |= set(
        db.session.scalars(
            db.select(ScheduleOverride.schedule_id).where(
                ScheduleOverride.user_id == user.id, ScheduleOverride.ends_at > start, ScheduleOverride.starts_at < end
            )
        )
    )
    if not ids:
        return []
    principal = tenancy.Principal.of_user(user)
    query = principal.scoped(db.select(Schedule).where(Schedule.id.in_(ids)), Schedule.customer_id)
    return list(db.session.scalars(query.order_by(Schedule.id)))


def calendar(user: User, *, now: datetime | None = None, base_url: str = "") -> str:
    now = (now or utcnow()).replace(microsecond=0)
    start, end = now - BEHIND, now + timedelta(weeks=WEEKS)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//OpsRelay//On-call shifts//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(f'On call: {user.name}')}",
    ]
    for schedule in _schedules_of(user, start, end):
        for shift in shifts(schedule, start, end):
            if shift.user_id != user.id:
                continue
            where = "override" if shift.layer == OVERRIDE else f"layer {shift.layer}"
            lines += [
                "BEGIN:VEVENT",
                f"UID:shift-{schedule.id}-{user.id}-{_utc(shift.starts_at)}@opsrelay",
                f"DTSTAMP:{_utc(now)}",
                f"DTSTART:{_utc(shift.starts_at)}",
                f"DTEND:{_utc(shift.ends_at)}",
                f"SUMMARY:{escape(f'On call: {schedule.name}')}",
                f"DESCRIPTION:{escape(f'{schedule.name} ({where}), hand-offs in {schedule.time_zone}.')}",
                *([f"URL:{base_url.rstrip('/')}/schedules/{schedule.id}"] if base_url else []),
                "TRANSP:OPAQUE",
                "END:VEVENT",
            ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def _utc(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%SZ")


def escape(text: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon and comma escaped, newlines as \\n."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after CRLF and a space (never inside a character)."""
    parts, current, size = [], "", 0
    for char in line:
        width = len(char.encode())
        if size + width > (75 if not parts else 74):
            parts.append(current)
            current, size = "", 0
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)
