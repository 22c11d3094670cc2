"""Who hears about an event, on which channel: every decision becomes a Notification row.

The rule today is the first seed's: a firing critical alert pages every active admin by SMS.
Admins without a usable phone get a suppressed row that says why.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import (
    Channel,
    Event,
    EventStatus,
    Notification,
    NotificationStatus,
    Role,
    Severity,
    User,
    utcnow,
)
from webapp.services import bulk, templates


class Routed(NamedTuple):
    """A decision as stored: the Notification row's id and status."""

    id: int
    status: NotificationStatus


def pages_admins(event: Event) -> bool:
    return event.event_type == "alert" and event.status == EventStatus.FIRING and event.severity == Severity.CRITICAL


def _active_admins() -> list[User]:
    return list(
        db.session.scalars(
            db.select(User)
            .where(User.role == Role.ADMIN, User.is_active.is_(True))
            .options(selectinload(User.phone_numbers))
            .order_by(User.id)
        )
    )


def _sms_decision(user: User) -> tuple[NotificationStatus, str | None, str | None]:
    """(status, recipient, reason) for one admin's SMS."""
    phone = user.primary_phone
    if phone is None:
        return NotificationStatus.SUPPRESSED, None, "no phone number: add one on the user's page"
    if phone.opted_out:
        since = phone.opted_out_at.strftime("%Y-%m-%d %H:%M UTC") if phone.opted_out_at else "an unknown time"
        via = f" via {phone.opted_out_via}" if phone.opted_out_via else ""
        return (
            NotificationStatus.SUPPRESSED,
            phone.number,
            f"opted out of SMS (number {phone.masked}) since {since}{via}",
        )
    return NotificationStatus.PENDING, phone.number, None


def route(events: list[Event], *, now: datetime | None = None) -> list[Routed]:
    """Decide and record every (user, channel) pair for these new events, in bulk; never commit."""
    now = now or utcnow()
    paging = [event for event in events if pages_admins(event)]
    if not paging:
        return []
    admins = _active_admins()
    templates_found: dict = {}
    rows: list[dict] = []
    for event in paging:
        body, render_error = _render_sms(event, templates_found)
        for admin in admins:
            status, recipient, reason = _sms_decision(admin)
            if status == NotificationStatus.PENDING and render_error:
                status, reason = NotificationStatus.FAILED, render_error
            rows.append(
                {
                    "event_id": event.id,
                    "user_id": admin.id,
                    "customer_id": event.customer_id,
                    "channel": Channel.SMS,
                    "recipient": recipient,
                    "body": body or "",
                    "status": status,
                    "reason": reason,
                    "failed_at": now if status == NotificationStatus.FAILED else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    return [
        Routed(row.id, row.status)
        for row in bulk.insert_returning(Notification, rows, Notification.id, Notification.status)
    ]


def _render_sms(event: Event, found: dict) -> tuple[str | None, str | None]:
    """(body, error): the event's SMS from its template, looked up once per type and customer."""
    key = (event.event_type, event.customer_id)
    if key not in found:
        found[key] = templates.find(event.event_type, Channel.SMS, customer_id=event.customer_id)
    template = found[key]
    if template is None:
        return None, f"no SMS template for event type {event.event_type!r}"
    try:
        return templates.render_text(template.body_text, templates.event_context(event)), None
    except templates.TemplateRenderError as exc:
        return None, str(exc)
