"""What one user wants to hear, on which channel: their preference for the event's customer, else their
own default preference (customer left empty), else their role's default.

Role defaults (a user without any preference row gets these) are part of each event type's entry in
`webapp.models.EVENT_KINDS` (`EventType.role_defaults`). In words:
- admin: every failure (job_failed, job_partial, compliance_violation, sla_breach) by web and email, by SMS
  too when critical; every critical alert by SMS (the first seed's page), for every customer.
- operator: for their customers, alerts of high severity and above, sla_warning, sla_breach, ticket_created and
  ticket_updated, by web and email, and by SMS when critical.
- viewer: read-only events (job_success, scheduled_backup_complete, compliance results) by web and email.
A role default records rows only for the channels it uses; an explicit preference records every channel, so
that "why did I not get an SMS?" has its answer in the delivery log -- except a channel off by default (voice)
that the preference does not turn on: nobody asks why no call came that they never asked for (the "why not?"
answer still says it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from webapp.models import (
    EVENT_KINDS,
    STORM_EMAIL_LIMIT,
    STORM_SMS_LIMIT,
    STORM_WINDOW_MINUTES,
    Channel,
    NotificationPreference,
    Role,
    Severity,
)
from webapp.services.people import preferences


@dataclass(frozen=True)
class Rules:
    """One user's effective rules for one customer."""

    source: str  # in words: which preference (or role default) decided
    role: Role
    explicit: bool
    channels: frozenset[Channel] = frozenset()
    min_severity: dict[Channel, Severity] = field(default_factory=dict)
    event_types: frozenset[str] = frozenset()  # empty: all
    job_types: frozenset[str] = frozenset()  # empty: all
    override_email: str | None = None
    timezone: str = "UTC"
    quiet_start: time | None = None
    quiet_end: time | None = None
    critical_bypasses_quiet_hours: bool = True
    max_per_hour: int | None = None
    aggregation_seconds: int | None = None  # None: aggregation off
    notify_on_resolve: bool = True
    storm_guard: bool = True  # on by default, role defaults included
    storm_sms_limit: int = STORM_SMS_LIMIT
    storm_email_limit: int = STORM_EMAIL_LIMIT
    storm_window_minutes: int = STORM_WINDOW_MINUTES

    def storm_limit(self, channel: Channel) -> int | None:
        """How many messages of this channel go at once in a storm window; None: no guard."""
        if not self.storm_guard:
            return None
        return {Channel.SMS: self.storm_sms_limit, Channel.EMAIL: self.storm_email_limit}.get(channel)

    def role_channels(self, event_type: str, severity: Severity) -> Mapping[Channel, Severity] | None:
        """For a role default: the channels it uses for this event, or None if it does not subscribe."""
        kind = EVENT_KINDS.get(event_type)
        default = kind.role_defaults.get(self.role) if kind is not None else None
        if default is None or severity.rank < default.least.rank:
            return None
        return default.channels

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def quiet_until(self, now: datetime) -> datetime | None:
        """The end of the quiet hours `now` falls in (as an aware UTC instant), or None outside them.

        Wall-clock times in the user's zone: a window across midnight and daylight-saving days work."""
        start, end = self.quiet_start, self.quiet_end
        if start is None or end is None or start == end:
            return None
        zone = self.zone
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        inside = start <= clock < end if start < end else (clock >= start or clock < end)
        if not inside:
            return None
        day = local.date() if clock < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, tzinfo=zone).astimezone(now.tzinfo)

    def quiet_words(self) -> str:
        return f"quiet hours {self.quiet_start:%H:%M}–{self.quiet_end:%H:%M} ({self.timezone})"

    def local(self, moment: datetime) -> str:
        """A time as the user reads it: in their zone, with the zone named."""
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")


def from_preference(
    pref: NotificationPreference, *, role: Role, user_timezone: str, customer_name: str | None
) -> Rules:
    zone = preferences.zone_name(pref.timezone, user_timezone)
    where = f"for {customer_name}" if pref.customer_id is not None else "(all customers)"
    return Rules(
        source=f"notification preference #{pref.id} {where}",
        role=role,
        explicit=True,
        channels=frozenset(Channel(c) for c in (pref.enabled_channels or []) if c in set(Channel)),
        min_severity={
            Channel.WEB: pref.min_severity_web,
            Channel.EMAIL: pref.min_severity_email,
            Channel.SMS: pref.min_severity_sms,
            Channel.VOICE: pref.min_severity_voice,
        },
        event_types=frozenset(pref.event_types or []),
        job_types=frozenset(pref.job_types or []),
        override_email=pref.override_email or None,
        timezone=zone,
        quiet_start=pref.quiet_hours_start,
        quiet_end=pref.quiet_hours_end,
        critical_bypasses_quiet_hours=pref.critical_bypasses_quiet_hours,
        max_per_hour=pref.max_notifications_per_hour,
        aggregation_seconds=pref.aggregation_window_seconds if pref.enable_aggregation else None,
        notify_on_resolve=pref.notify_on_resolve,
        storm_guard=pref.storm_guard is not False,
        storm_sms_limit=pref.storm_sms_limit or STORM_SMS_LIMIT,
        storm_email_limit=pref.storm_email_limit or STORM_EMAIL_LIMIT,
        storm_window_minutes=pref.storm_window_minutes or STORM_WINDOW_MINUTES,
    )


def role_default(role: Role, *, user_timezone: str) -> Rules:
    return Rules(
        source=f"the {role} role's default (no preference set)", role=role, explicit=False, timezone=user_timezone
    )


def pick(
    prefs: dict[tuple[int, int | None], NotificationPreference],
    *,
    user_id: int,
    role: Role,
    user_timezone: str,
    customer_id: int | None,
    customer_name: str | None,
) -> Rules:
    """The preference for this customer, else the user's default preference, else the role default."""
    pref = prefs.get((user_id, customer_id)) if customer_id is not None else None
    pref = pref or prefs.get((user_id, None))
    if pref is None:
        return role_default(role, user_timezone=user_timezone)
    return from_preference(pref, role=role, user_timezone=user_timezone, customer_name=customer_name)
