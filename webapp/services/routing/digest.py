"""Holding notifications and releasing them: quiet hours, aggregation, the hourly limit, and digests.

Only email and SMS are ever held: a web row is the silent in-app list and is `sent` at once.

- Quiet hours: a row that falls inside the user's quiet hours (wall clock in their zone) is `deferred`
  with hold "quiet_hours" until they end; with `critical_bypasses_quiet_hours`, a critical one goes now.
- Aggregation (`enable_aggregation`): each email/SMS opens, or joins, the user's window for that channel and
  customer, `aggregation_window_seconds` (default 120) from its first row; rows are held (hold "aggregation")
  until the window closes, so an alert storm becomes one message per user and channel.
- Hourly limit (`max_notifications_per_hour`, per user and channel, clock hours in UTC): messages sent or on
  their way this hour count; beyond the limit rows are held (hold "hourly_cap") until the hour rolls over
  (or, if that is inside quiet hours, until those end).
- Storm guard (on by default, `storm_guard`; per user and channel, across customers): past `storm_sms_limit`
  SMS (5) or `storm_email_limit` emails (10) sent or on their way in the last `storm_window_minutes` (10), rows
  are held (hold "storm") until the oldest of those leaves the window: the first ones go at once, the rest
  become one summary ("+37 more critical alerts: DiskFull ×20 on db-*, ..., see <link>") minutes later, never
  an hour later, and nothing is dropped. Held rows of an incident acknowledged meanwhile are left out of it.

Release (`release`, the periodic job "release-held-notifications", which the embedded worker runs too):
one conditional UPDATE ... RETURNING takes every due deferred row (two schedulers never release a row
twice), grouped per (user, channel, customer). A group of one is delivered as itself. A larger group becomes
one digest: a Notification with hold "digest" and no event, which the delivery engine sends like any other;
each held row it carries ends `suppressed` with `digest_id` set and the reason "delivered in digest #N ...".
So every held row ends in a visible terminal state (its own delivery, or the digest's) with a reason.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import func, update

from webapp import outbox
from webapp.channels import sms_text
from webapp.extensions import db
from webapp.models import (
    EVENT_KINDS,
    STORM_EMAIL_LIMIT,
    STORM_SMS_LIMIT,
    STORM_WINDOW_MINUTES,
    Channel,
    Event,
    EventStatus,
    Incident,
    IncidentState,
    Notification,
    NotificationStatus,
    utcnow,
)
from webapp.services import bulk

if TYPE_CHECKING:
    from webapp.models import NotificationPreference
    from webapp.services.routing.rules import Rules

S = NotificationStatus
QUIET, AGGREGATION, CAP, STORM, DIGEST = "quiet_hours", "aggregation", "hourly_cap", "storm", "digest"
HELD_CHANNELS = (Channel.EMAIL, Channel.SMS)
COUNTED = (S.PENDING, S.QUEUED, S.SENDING, S.SENT, S.DELIVERED, S.FAILED)  # messages this hour
NOT_COUNTED = tuple(s for s in S if s not in COUNTED)  # held and suppressed rows
STORM_LIMITS = {Channel.SMS: STORM_SMS_LIMIT, Channel.EMAIL: STORM_EMAIL_LIMIT}  # the defaults
WHY = {QUIET: "quiet hours", AGGREGATION: "aggregation window", CAP: "hourly limit", STORM: "storm guard"}


@dataclass(frozen=True)
class Hold:
    kind: str
    until: datetime
    reason: str


def hour_start(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


class Timing:
    """The hold decisions of one routing pass: counts and open windows read once, then kept in memory."""

    def __init__(self, now: datetime):
        self.now = now
        self.counts: dict[tuple[int, Channel], int] = defaultdict(int)
        self.windows: dict[tuple[int, Channel, int | None], datetime] = {}
        self.recent: dict[tuple[int, Channel], list[datetime]] = defaultdict(list)  # storm guard: sent lately

    @classmethod
    def load(
        cls,
        user_ids: list[int],
        *,
        prefs: Iterable[NotificationPreference],
        now: datetime,
        recent: dict[tuple[int, Channel], tuple[int, datetime | None]],
    ) -> Timing:
        """`recent`: per person and channel, (count, oldest) of the messages in the default storm window, as the
        people query read them (`storm_columns`)."""
        self = cls(now)
        prefs = list(prefs)
        capped = sorted({p.user_id for p in prefs if p.max_notifications_per_hour})
        aggregating = sorted({p.user_id for p in prefs if p.enable_aggregation})
        for key, (count, oldest) in recent.items():
            self.recent[key] = [oldest] * count  # all the rule reads is how many, and the oldest
        default = STORM_WINDOW_MINUTES
        custom = sorted({p.user_id for p in prefs if p.storm_guard and _custom_storm(p)})
        if custom:  # not the window or limits the people query counted by: read their messages themselves
            longest = max(p.storm_window_minutes or default for p in prefs if p.user_id in custom)
            for key in [key for key in self.recent if key[0] in custom]:
                del self.recent[key]
            for user_id, channel, created_at in db.session.execute(
                db.select(Notification.user_id, Notification.channel, Notification.created_at).where(
                    Notification.user_id.in_(custom),
                    Notification.channel.in_(HELD_CHANNELS),
                    Notification.created_at > now - timedelta(minutes=max(longest, default)),
                    counted(),
                )
            ):
                self.recent[(user_id, Channel(channel))].append(created_at)
        if capped:
            for user_id, channel, count in db.session.execute(
                db.select(Notification.user_id, Notification.channel, func.count())
                .where(
                    Notification.user_id.in_(capped),
                    Notification.channel.in_(HELD_CHANNELS),
                    Notification.created_at >= hour_start(now),
                    Notification.status.in_(COUNTED),
                )
                .group_by(Notification.user_id, Notification.channel)
            ):
                self.counts[(user_id, Channel(channel))] = count
        if aggregating:
            for user_id, channel, customer_id, until in db.session.execute(
                db.select(
                    Notification.user_id,
                    Notification.channel,
                    Notification.customer_id,
                    func.max(Notification.deliver_after),
                )
                .where(
                    Notification.user_id.in_(aggregating),
                    Notification.status == S.DEFERRED,
                    Notification.hold == AGGREGATION,
                    Notification.deliver_after > now,
                )
                .group_by(Notification.user_id, Notification.channel, Notification.customer_id)
            ):
                self.windows[(user_id, Channel(channel), customer_id)] = until
        return self

    def hold(self, user_id: int, channel: Channel, customer_id: int | None, rules: Rules, *, critical: bool):
        """A Hold for this email/SMS row, or None to send it now (and count it against the hour)."""
        now = self.now
        quiet_end = rules.quiet_until(now)
        if quiet_end is not None and not (critical and rules.critical_bypasses_quiet_hours):
            return Hold(QUIET, quiet_end, f"{rules.quiet_words()}: held until {rules.local(quiet_end)}")
        if rules.aggregation_seconds:
            key = (user_id, channel, customer_id)
            until = self.windows.get(key)
            if until is None or until <= now:
                until = self.windows[key] = now + timedelta(seconds=rules.aggregation_seconds)
            return Hold(
                AGGREGATION,
                until,
                f"aggregation on: sent together with the others of a {rules.aggregation_seconds}-second window "
                f"at {rules.local(until)}",
            )
        if rules.max_per_hour and self.counts[(user_id, channel)] >= rules.max_per_hour:
            until = hour_start(now) + timedelta(hours=1)
            until = rules.quiet_until(until) or until
            return Hold(
                CAP,
                until,
                f"hourly limit of {rules.max_per_hour} {channel} messages reached: held for the digest at "
                f"{rules.local(until)}",
            )
        storm = self._storm(user_id, channel, rules)
        if storm is not None:
            return storm
        self.counts[(user_id, channel)] += 1
        self.recent[(user_id, channel)].append(now)
        return None

    def _storm(self, user_id: int, channel: Channel, rules: Rules) -> Hold | None:
        """The storm guard: past `limit` messages of this channel in the window, held for one summary when the
        oldest of them leaves the window (so at most `limit` messages per window, the summary included)."""
        limit = rules.storm_limit(channel)
        if not limit:
            return None
        window = timedelta(minutes=rules.storm_window_minutes)
        recent = [moment for moment in self.recent[(user_id, channel)] if moment > self.now - window]
        if len(recent) < limit:
            return None
        until = min(recent) + window
        return Hold(
            STORM,
            until,
            f"storm guard: {len(recent)} {channel} messages in the last {rules.storm_window_minutes} minutes "
            f"(limit {limit}): held for one summary at {rules.local(until)}",
        )


def _custom_storm(pref: NotificationPreference) -> bool:
    """Another storm window or limit than the defaults the people query counts by."""
    values = (pref.storm_window_minutes, pref.storm_sms_limit, pref.storm_email_limit)
    defaults = (STORM_WINDOW_MINUTES, STORM_LIMITS[Channel.SMS], STORM_LIMITS[Channel.EMAIL])
    return any(value is not None and value != default for value, default in zip(values, defaults, strict=True))


def storm_columns(user_id: sa.ColumnElement, now: datetime) -> dict[tuple[Channel, str], sa.ColumnElement]:
    """{(channel, "count" | "oldest"): a correlated scalar subquery} over a person's latest messages of that
    channel in the default storm window, at most the default limit of them: how many, and the oldest (so, with
    as many as the limit, the one whose leaving the window frees it). The people query selects them, so the
    guard costs no statement of its own, and each reads a few entries of ix_notification_storm however many
    messages a storm brought."""
    columns = {}
    for channel in HELD_CHANNELS:
        latest = (
            db.select(Notification.created_at)
            .where(
                Notification.user_id == user_id,
                Notification.channel == channel,
                counted(),
                Notification.created_at > now - timedelta(minutes=STORM_WINDOW_MINUTES),
            )
            .order_by(Notification.created_at.desc())
            .limit(STORM_LIMITS[channel])
            .correlate(user_id.table)
            .subquery()
        )
        for name, aggregate in (("count", func.count()), ("oldest", func.min(latest.c.created_at))):
            subquery = db.select(aggregate).select_from(latest).scalar_subquery()
            columns[(channel, name)] = subquery.label(f"storm_{channel}_{name}")
    return columns


def counted() -> sa.ColumnElement[bool]:
    """The rows that count as messages sent or on their way (COUNTED), written as ix_notification_storm's
    predicate, in literals, so that PostgreSQL and SQLite use that partial index."""
    held = sa.bindparam("not_counted", [str(s) for s in NOT_COUNTED], expanding=True, literal_execute=True, unique=True)
    return Notification.status.not_in(held)


def release(*, now: datetime | None = None) -> list[int]:
    """Release every due held row; the pending ids (rows and digests) go to the outbox, and are returned."""
    now = now or utcnow()
    claimed = db.session.execute(
        update(Notification)
        .where(Notification.status == S.DEFERRED, Notification.deliver_after <= now)
        .values(status=S.PENDING, updated_at=now)
        .returning(Notification.id, Notification.user_id, Notification.channel, Notification.customer_id)
        .execution_options(synchronize_session=False)
    ).all()
    groups: dict[tuple, list[int]] = defaultdict(list)
    for row in claimed:
        groups[(row.user_id, row.channel, row.customer_id)].append(row.id)
    pending = sorted(ids[0] for ids in groups.values() if len(ids) == 1)  # delivery checks acks at send time
    merged = {key: sorted(ids) for key, ids in groups.items() if len(ids) > 1}
    if merged:
        pending.extend(_make_digests(merged, now=now))
    outbox.deliver(sorted(pending))
    return sorted(pending)


def _make_digests(groups: dict[tuple, list[int]], *, now: datetime) -> list[int]:
    """One digest per group; rows of events acknowledged meanwhile end suppressed instead."""
    items = _details([i for group in groups.values() for i in group])
    acked = [i for i, item in items.items() if item.stopped]
    if acked:
        db.session.execute(
            update(Notification),
            [
                {
                    "id": i,
                    "status": S.SUPPRESSED,
                    "updated_at": now,
                    "reason": "its incident was acknowledged or resolved before it went out"
                    + ("; left out of the storm summary" if items[i].hold == STORM else ""),
                }
                for i in acked
            ],
        )
    gone = set(acked)
    groups = {key: [i for i in group if i not in gone] for key, group in groups.items()}
    singles = [group[0] for group in groups.values() if len(group) == 1]
    groups = {key: group for key, group in groups.items() if len(group) > 1}
    if not groups:
        return singles
    rows = [
        _digest_row(user_id, Channel(channel), customer_id, [items[i] for i in group], now=now)
        for (user_id, channel, customer_id), group in groups.items()
    ]
    made = {
        (row.user_id, Channel(row.channel), row.customer_id): row.id
        for row in bulk.insert_returning(
            Notification, rows, Notification.id, Notification.user_id, Notification.channel, Notification.customer_id
        )
    }
    updates = []
    for key, group in groups.items():
        digest_id = made[(key[0], Channel(key[1]), key[2])]
        why = _why(items[i].hold for i in group)
        for held_id in group:
            updates.append(
                {
                    "id": held_id,
                    "status": S.SUPPRESSED,
                    "digest_id": digest_id,
                    "updated_at": now,
                    "reason": f"delivered in digest #{digest_id} with {len(group) - 1} other notifications ({why})",
                }
            )
    db.session.execute(update(Notification), updates)
    return sorted([*made.values(), *singles])


def _details(ids: list[int]) -> dict:
    items = {}
    for start in range(0, len(ids), bulk.BATCH):
        for row in db.session.execute(
            db.select(
                Notification.id,
                Notification.recipient,
                Notification.hold,
                Notification.created_at,
                Event.title,
                Event.event_type,
                Event.severity,
                Event.status,
                Event.labels,
                sa.and_(Incident.state != IncidentState.TRIGGERED.value, Event.status == EventStatus.FIRING).label(
                    "stopped"
                ),
            )
            .outerjoin(Event, Event.id == Notification.event_id)
            .outerjoin(Incident, Incident.id == Event.incident_id)
            .where(Notification.id.in_(ids[start : start + bulk.BATCH]))
        ):
            items[row.id] = row
    return items


def _why(holds: Iterable[str | None]) -> str:
    return ", ".join(sorted({WHY.get(h, "held") for h in holds}))


def describe(title: str, labels: dict | None, status: str | None) -> str:
    """'DiskFull on db-1' for an alert with an instance label; '(resolved)' when it is."""
    instance = (labels or {}).get("instance", "")
    text = f"{title} on {instance.split(':')[0]}" if instance else title
    return text + (" (resolved)" if status == EventStatus.RESOLVED else "")


def summary(group: list) -> tuple[str, str, list[str]]:
    """(head, one-line list, detail lines) of a digest's items."""
    types = {item.event_type for item in group}
    kind = EVENT_KINDS.get(next(iter(types))) if len(types) == 1 else None
    noun = kind.plural if kind is not None else "notifications"
    head = f"{len(group)} {noun}"
    names = [describe(item.title or "notification", item.labels, item.status) for item in group]
    lines = [
        f"- [{item.severity}] {name} at {item.created_at:%Y-%m-%d %H:%M} UTC"
        for item, name in zip(group, names, strict=True)
    ]
    return head, ", ".join(names), lines


def storm_summary(group: list) -> tuple[str, str]:
    """('+37 more critical alerts', 'DiskFull ×20 on db-*, CpuHigh ×17 on web-1') of a storm's held items:
    one part per title, the most frequent first, its hosts as one name, a common prefix with '*' or a count."""
    types = {item.event_type for item in group}
    kind = EVENT_KINDS.get(next(iter(types))) if len(types) == 1 else None
    noun = kind.plural if kind is not None else "notifications"
    severities = {str(item.severity) for item in group if item.severity is not None}
    head = f"+{len(group)} more {severities.pop() + ' ' if len(severities) == 1 else ''}{noun}"
    by_title: dict[str, list] = defaultdict(list)
    for item in group:
        by_title[item.title or "notification"].append(item)
    parts = []
    for title, items in sorted(by_title.items(), key=lambda pair: (-len(pair[1]), pair[0])):
        hosts = sorted({(item.labels or {}).get("instance", "").split(":")[0] for item in items} - {""})
        part = f"{title} ×{len(items)}" if len(items) > 1 else title
        if len(hosts) == 1:
            part += f" on {hosts[0]}"
        elif hosts:
            prefix = os.path.commonprefix(hosts)
            part += f" on {prefix}*" if prefix else f" on {len(hosts)} hosts"
        parts.append(part)
    return head, ", ".join(parts)


def _storm_row(row: dict, channel: Channel, group: list) -> dict:
    head, parts = storm_summary(group)
    link = current_app.config.get("PUBLIC_BASE_URL", "") + "/incidents"
    if channel == Channel.SMS:
        suffix = f", see {link}"
        body = sms_text.shorten(f"{head}: {parts}", int(current_app.config.get("SMS_MAX_SEGMENTS", 3)), suffix=suffix)
        length = sms_text.measure(body)
        return row | {"body": body, "sms_encoding": length.encoding, "sms_segments": length.segments}
    lines = [
        f"- [{item.severity}] {describe(item.title or 'notification', item.labels, item.status)}" for item in group
    ]
    body = f"{head} held by the storm guard, after the first ones went out at once:\n" + "\n".join(lines)
    return row | {"subject": f"{head}: {parts}"[:300], "body": f"{body}\n\nSee {link}"}


def _digest_row(user_id: int, channel: Channel, customer_id: int | None, group: list, *, now: datetime) -> dict:
    head, names, lines = summary(group)
    why = _why(item.hold for item in group)
    row = {
        "event_id": None,
        "user_id": user_id,
        "customer_id": customer_id,
        "channel": channel,
        "recipient": group[-1].recipient,
        "subject": None,
        "status": S.PENDING,
        "hold": DIGEST,
        "reason": f"digest of {len(group)} notifications held by the {why}",
        "sms_encoding": None,
        "sms_segments": None,
        "created_at": now,
        "updated_at": now,
    }
    if any(item.hold == STORM for item in group):
        return _storm_row(row, channel, group)
    if channel == Channel.SMS:
        body = sms_text.shorten(f"{head}: {names}", int(current_app.config.get("SMS_MAX_SEGMENTS", 3)))
        length = sms_text.measure(body)
        row.update(body=body, sms_encoding=length.encoding, sms_segments=length.segments)
    else:
        row.update(subject=f"{head}: {names}"[:300], body=f"{head} ({why}):\n" + "\n".join(lines))
    return row
