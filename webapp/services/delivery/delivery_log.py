"""The delivery log: every Notification, filtered and paged by key, and each decision in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import joinedload

from webapp.extensions import db
from webapp.models import Channel, Event, Notification, NotificationStatus, WebhookDelivery
from webapp.paging import KeysetPage, keyset_page

if TYPE_CHECKING:
    from webapp.tenancy import Principal

S = NotificationStatus
TERMINAL = frozenset({S.SENT, S.DELIVERED, S.FAILED, S.SUPPRESSED})  # a watcher may stop polling
FINAL = frozenset({S.DELIVERED, S.FAILED, S.SUPPRESSED})


@dataclass(frozen=True)
class LogFilter:
    channel: Channel | None = None
    status: NotificationStatus | None = None
    customer_id: int | None = None
    event_type: str | None = None
    user_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def visible_to(principal: Principal, query):
    """The rows of `query` the reader sees (tenancy): its customers' notifications and those addressed to it."""
    return principal.scoped(query, Notification.customer_id, owner_column=Notification.user_id)


def events_visible_to(principal: Principal, query):
    """The events of `query` the reader sees: its customers' events, and those it was notified about (a person
    may read what paged them; of its notifications, `visible_to` shows them their own)."""
    own = principal.own_user_id
    paged = Event.id.in_(db.select(Notification.event_id).where(Notification.user_id == own)) if own else None
    return principal.scoped(query, Event.customer_id, also=paged)


def _filtered(query, f: LogFilter, principal: Principal):
    query = visible_to(principal, query)
    if f.channel is not None:
        query = query.where(Notification.channel == f.channel)
    if f.status is not None:
        query = query.where(Notification.status == f.status)
    if f.customer_id is not None:
        query = query.where(Notification.customer_id == f.customer_id)
    if f.user_id is not None:
        query = query.where(Notification.user_id == f.user_id)
    if f.since is not None:
        query = query.where(Notification.created_at >= f.since)
    if f.until is not None:
        query = query.where(Notification.created_at < f.until)
    if f.event_type:
        query = query.where(
            Notification.event_id.in_(db.select(Event.id).where(Event.event_type == f.event_type).scalar_subquery())
        )
    return query


def page(
    f: LogFilter,
    *,
    principal: Principal,
    before: int | None = None,
    after: int | None = None,
    per_page: int = 50,
) -> KeysetPage:
    """Newest first, `per_page` rows older than `before` (or newer than `after`): one statement, whatever
    the depth, with the event and user loaded in the same statement."""
    query = _filtered(
        db.select(Notification).options(joinedload(Notification.event), joinedload(Notification.user)),
        f,
        principal,
    )
    return keyset_page(query, Notification.id, per_page=per_page, before=before, after=after)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "?"


def explain(n: Notification) -> list[str]:
    """The decision and what happened since, in sentences an operator can read aloud."""
    channel = str(n.channel)
    lines: list[str] = []
    if n.event is not None:
        who = n.user.name if n.user else (n.masked_recipient if n.recipient else "nobody")
        event = f"the {n.event.event_type} event “{n.event.title}”"
        lines.append(f"Created {_when(n.created_at)} for {event}, to {who} by {channel}.")
    else:
        by = f", sent by {n.user.name}" if n.user else ""
        lines.append(
            f"Created {_when(n.created_at)} as a test message (no event), to {n.masked_recipient} by {channel}{by}."
        )
    status = n.status
    if status == S.SUPPRESSED:
        lines.append(f"Not sent — suppressed: {n.reason or 'no reason was recorded'}.")
        return lines
    if status == S.DEFERRED:
        lines.append(f"Held until {_when(n.deliver_after)}" + (f": {n.reason}." if n.reason else "."))
        return lines
    if n.reason:
        lines.append(f"Note: {n.reason}.")
    if status == S.PENDING:
        lines.append("Waiting in the outbox: not yet handed to the queue (the recovery sweep retries every 30 s).")
    if n.queued_at:
        lines.append(f"Handed to the queue {_when(n.queued_at)}.")
    if n.attempts:
        lines.append(f"{n.attempts} attempt{'s' if n.attempts != 1 else ''} so far.")
    if status == S.QUEUED and n.error_message:
        lines.append(
            f"Last attempt hit a temporary error ({n.error_code}): {n.error_message}; "
            f"next try {_when(n.next_attempt_at)}."
        )
    if status == S.SENDING:
        lines.append(f"A worker claimed it {_when(n.claimed_at)} and is sending it now.")
    if n.sent_at:
        via = f" (provider id {n.provider_id})" if n.provider_id else ""
        simulated = " — simulated: no provider credentials are set, nothing left this server" if n.simulated else ""
        lines.append(f"Sent {_when(n.sent_at)}{via}{simulated}.")
    if status == S.SENT and n.channel == Channel.SMS:
        lines.append(
            "Simulated, so no carrier will send a delivery receipt: sent is as far as it goes."
            if n.simulated
            else "Waiting for the carrier's delivery receipt (Twilio status callback)."
        )
    if status == S.SENT and n.channel == Channel.VOICE:
        lines.append(
            "Simulated: no phone rang."
            if n.simulated
            else "The call is placed; how it ends (answered, no answer, busy, voicemail) comes with Twilio's status "
            "callback."
        )
    if status == S.DELIVERED and n.channel == Channel.VOICE:
        lines.append(f"Answered by a person {_when(n.delivered_at)}.")
    elif status == S.DELIVERED:
        lines.append(f"Delivered {_when(n.delivered_at)}.")
    if status == S.FAILED:
        code = f" ({n.error_code})" if n.error_code else ""
        lines.append(f"Failed {_when(n.failed_at)}{code}: {n.error_message or 'no message from the provider'}.")
    if len(n.attempt_log or []) > 1 or any(entry.get("outcome") == "lease expired" for entry in n.attempt_log or []):
        lines.extend(attempt_history(n))
    return lines


def attempt_history(n: Notification) -> list[str]:
    """One sentence per attempt, oldest first, with every provider id the attempts got."""
    lines = []
    for entry in n.attempt_log or []:
        provider = f", provider id {entry['provider_id']}" if entry.get("provider_id") else ""
        by = f" by worker {entry['by']}" if entry.get("by") else ""
        note = f": {entry['note']}" if entry.get("note") and entry.get("outcome") != "lease expired" else ""
        if entry.get("outcome") == "lease expired":
            note = " — no outcome was recorded (the worker stopped renewing its claim); the provider may have it"
        lines.append(f"Attempt {entry.get('attempt')} ({entry.get('at')}){by}: {entry.get('outcome')}{provider}{note}.")
    return lines


def webhook_attempts(n: Notification) -> list[WebhookDelivery]:
    """The HTTP attempts behind a webhook notification: its event's deliveries to its endpoint (newest first)."""
    if n.channel != Channel.WEBHOOK or n.event_id is None:
        return []
    query = db.select(WebhookDelivery).where(WebhookDelivery.event_id == n.event_id)
    if n.webhook_endpoint_id is not None:  # one row per endpoint: only this endpoint's attempts
        query = query.where(WebhookDelivery.endpoint_id == n.webhook_endpoint_id)
    return list(
        db.session.scalars(
            query.options(joinedload(WebhookDelivery.endpoint)).order_by(WebhookDelivery.id.desc()).limit(100)
        )
    )


def status_payload(n: Notification) -> dict:
    """What the status endpoint answers for a watched notification (test sends, SMTP tests)."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": n.id,
        "channel": str(n.channel),
        "recipient": n.masked_recipient,
        "status": str(n.status),
        "done": n.status in FINAL,
        "settled": n.status in TERMINAL,
        "reason": n.reason,
        "attempts": n.attempts,
        "error_code": n.error_code,
        "error_message": n.error_message,
        "provider_id": n.provider_id,
        "simulated": n.simulated,
        "queued_at": iso(n.queued_at),
        "sent_at": iso(n.sent_at),
        "delivered_at": iso(n.delivered_at),
        "failed_at": iso(n.failed_at),
        "explanation": explain(n),
    }
