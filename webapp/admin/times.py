"""One way to show a time on every page: the absolute time in the viewer's zone with the zone named, and how long
ago or from now it is ("in 12 min", "3 min ago").

The viewer's zone is their own setting (services.people.preferences.reading_zone: the zone of their preference for
all customers, else their account's). Templates call `show_time(moment)`; the `when` macros of _macros.html and
admin/_ops_macros.html are that call."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import has_request_context, request
from flask_login import current_user
from markupsafe import Markup

from webapp.admin import bp
from webapp.models import utcnow
from webapp.services.people import preferences


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def absolute(moment: datetime, where: ZoneInfo, *, seconds: bool = False) -> str:
    """'2026-03-29 03:30 CEST': the wall-clock time in `where`, with the zone's abbreviation (or UTC offset)."""
    return moment.astimezone(where).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 10:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if hours < 48:
        return f"{hours + (minutes >= 30)} h"
    days = round(seconds / 86400)
    return f"{days} days"


def relative(moment: datetime, now: datetime) -> str:
    """'in 12 min', '3 min ago', 'just now', 'in 2 h 5 min', '3 days ago'."""
    delta = (moment - now).total_seconds()
    if abs(delta) < 45:
        return "just now"
    return f"in {_span(delta)}" if delta > 0 else f"{_span(-delta)} ago"


def remember_viewer_zone(pref_zone: str | None) -> None:
    """The zone of the signed-in person's preference, read with the top bar's facts (menu.py): no second query."""
    request.environ["opsrelay.viewer_zone"] = zone(preferences.zone_name(pref_zone, current_user.timezone))


def viewer_zone() -> ZoneInfo:
    """The signed-in person's zone (UTC for nobody), looked up once per request."""
    if not has_request_context():
        return ZoneInfo("UTC")
    cached = request.environ.get("opsrelay.viewer_zone")  # per request (an app context, and `g`, may outlive one)
    if cached is None:
        signed_in = current_user and current_user.is_authenticated
        cached = request.environ["opsrelay.viewer_zone"] = zone(
            preferences.reading_zone(current_user) if signed_in else None
        )
    return cached


@bp.app_template_global("local_time")
def local_time(moment: datetime) -> str:
    """The absolute time alone, in the viewer's zone (for a title or a sentence)."""
    return absolute(moment, viewer_zone())


@bp.app_template_global("show_time")
def show_time(
    moment: datetime | None, *, seconds: bool = False, ago: bool = True, now: datetime | None = None
) -> Markup:
    """A <time> in the viewer's zone, its UTC value on hover, and the relative time beside it."""
    if moment is None:
        return Markup('<span class="text-muted">—</span>')
    if moment.tzinfo is None:  # a naive value is UTC (UtcDateTime never returns one)
        moment = moment.replace(tzinfo=UTC)
    shown = Markup('<time class="text-nowrap" datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(),
        absolute(moment, ZoneInfo("UTC"), seconds=True),
        absolute(moment, viewer_zone(), seconds=seconds),
    )
    if ago:
        shown += Markup(' <small class="muted rel text-nowrap">{}</small>').format(relative(moment, now or utcnow()))
    return shown
