"""Notification preferences: one user's defaults, and one change applied to many users at once."""

from __future__ import annotations

from datetime import time

from webapp.extensions import db
from webapp.models import PERSONAL_CHANNELS, NotificationPreference, Severity, User
from webapp.services import audit
from webapp.services.bulk import insert_returning

CHANNELS = tuple(str(c) for c in PERSONAL_CHANNELS)  # the channels a person receives on
EDITABLE = (
    "enabled_channels",
    "min_severity_web",
    "min_severity_email",
    "min_severity_sms",
    "event_types",
    "job_types",
    "override_email",
    "timezone",
    "quiet_hours_start",
    "quiet_hours_end",
    "critical_bypasses_quiet_hours",
    "max_notifications_per_hour",
    "enable_aggregation",
    "aggregation_window_seconds",
)


def _plain(value):
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, Severity):
        return value.value
    return value


def default_for(user: User) -> NotificationPreference:
    """The user's all-customers preference row; a new one (with the model's defaults) if none exists."""
    pref = db.session.scalar(
        db.select(NotificationPreference).where(
            NotificationPreference.user_id == user.id, NotificationPreference.customer_id.is_(None)
        )
    )
    if pref is None:
        pref = NotificationPreference(user_id=user.id, customer_id=None)
        db.session.add(pref)
        db.session.flush()
    return pref


def update(pref: NotificationPreference, values: dict, *, by: User, target_user: User) -> dict:
    """Set the EDITABLE fields in `values`; record what changed. Returns {field: [old, new]}."""
    changes = {}
    for name, value in values.items():
        if name not in EDITABLE:
            raise KeyError(name)
        old = getattr(pref, name)
        if _plain(old) != _plain(value):
            changes[name] = [_plain(old), _plain(value)]
            setattr(pref, name, value)
    if changes:
        db.session.flush()
        audit.record(
            actor=by,
            action="preference.update",
            target=target_user,
            summary=f"notification preferences of {target_user.email}",
            changes=changes,
        )
    return changes


def bulk_update(
    user_ids: list[int],
    *,
    channels_on: set[str] = frozenset(),
    channels_off: set[str] = frozenset(),
    values: dict | None = None,
    by: User,
) -> int:
    """Apply one change to many users' default preferences (creating missing rows). Returns how many."""
    values = values or {}
    for name in values:
        if name not in EDITABLE or name == "enabled_channels":
            raise KeyError(name)
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return 0
    have = set(
        db.session.scalars(
            db.select(NotificationPreference.user_id).where(
                NotificationPreference.user_id.in_(user_ids), NotificationPreference.customer_id.is_(None)
            )
        )
    )
    missing = [uid for uid in user_ids if uid not in have]
    if missing:
        defaults = NotificationPreference.__table__.c
        insert_returning(
            NotificationPreference,
            [
                {
                    "user_id": uid,
                    "customer_id": None,
                    "enabled_channels": list(CHANNELS),
                    "event_types": [],
                    "job_types": [],
                }
                for uid in missing
            ],
            defaults.id,
        )
    prefs = db.session.scalars(
        db.select(NotificationPreference).where(
            NotificationPreference.user_id.in_(user_ids), NotificationPreference.customer_id.is_(None)
        )
    ).all()
    for pref in prefs:
        channels = [c for c in (pref.enabled_channels or []) if c not in channels_off]
        channels += [c for c in CHANNELS if c in channels_on and c not in channels]
        pref.enabled_channels = [c for c in CHANNELS if c in channels] + [c for c in channels if c not in CHANNELS]
        for name, value in values.items():
            setattr(pref, name, value)
    db.session.flush()
    described = {name: _plain(value) for name, value in values.items()}
    if channels_on:
        described["channels_on"] = sorted(channels_on)
    if channels_off:
        described["channels_off"] = sorted(channels_off)
    audit.record(
        actor=by,
        action="preference.bulk_update",
        summary=f"preferences changed for {len(prefs)} users",
        changes={"users": user_ids, **described},
    )
    return len(prefs)
