"""Chat channels: a customer's Slack / Teams channels hear about its events, and what each message says.

`fan_out(events)` records one channel=slack/teams Notification per (event, enabled chat channel of the event's
customer): pending when the event reaches the channel's minimum severity, suppressed with the reason
otherwise. It is called wherever outgoing webhooks are (an incident's first firing, its acknowledgement, its
resolution, reports); `post_incident(incident)` is what an escalation step calls to post an incident to the
customer's channels (`channel_ids` picks some of them).

`message(event)` is what the delivery posts, read when it goes out: the incident's page as the link, and --
when SLACK_SIGNING_SECRET is set and the incident still waits for someone -- the value of Slack's Acknowledge
button. A person's own Slack / Teams webhook is one of their channels (routing.decisions).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import current_app

from webapp import outbox
from webapp.channels.chat import ChatMessage, cut
from webapp.extensions import db
from webapp.models import (
    ChatChannel,
    Customer,
    Event,
    EventStatus,
    Incident,
    IncidentState,
    Notification,
    NotificationStatus,
    utcnow,
)
from webapp.queue import DELIVERIES
from webapp.services import bulk
from webapp.services.routing.decisions import Routed, plain_text

KEY_LABELS = ("alertname", "instance", "job", "service", "namespace", "cluster", "env", "environment")
ACK_PREFIX = "incident:"  # the Acknowledge button's value: "incident:<id>"


def fan_out(
    events: list[Event], *, now: datetime | None = None, channel_ids: Iterable[int] | None = None
) -> list[Routed]:
    """Notifications for the enabled chat channels of each event's customer (or only `channel_ids`); flush only.
    A channel already told of an event is not told twice."""
    customer_ids = {e.customer_id for e in events if e.customer_id is not None}
    if not customer_ids:
        return []
    query = db.select(ChatChannel).where(ChatChannel.customer_id.in_(customer_ids), ChatChannel.enabled.is_(True))
    if channel_ids is not None:
        query = query.where(ChatChannel.id.in_(list(channel_ids)))
    channels = list(db.session.scalars(query.order_by(ChatChannel.id)))
    if not channels:
        return []
    now = now or utcnow()
    rows = []
    for event in events:
        subject, body = plain_text(event)
        for channel in (c for c in channels if c.customer_id == event.customer_id):
            row = {
                "event_id": event.id,
                "chat_channel_id": channel.id,
                "customer_id": event.customer_id,
                "channel": channel.kind,
                "recipient": f"{channel.name}"[:320],
                "subject": subject[:300],
                "body": body,
                "status": NotificationStatus.PENDING,
                "created_at": now,
                "updated_at": now,
            }
            if event.severity.rank < channel.min_severity.rank:
                row["status"] = NotificationStatus.SUPPRESSED
                row["reason"] = (
                    f"below the minimum severity of chat channel {channel.name!r}: the event is {event.severity}, "
                    f"the channel takes {channel.min_severity} or above"
                )[:300]
            rows.append(row)
    if not rows:
        return []
    inserted = bulk.insert_returning(
        Notification, rows, Notification.id, Notification.status, ignore_conflicts_on=("event_id", "chat_channel_id")
    )
    outbox.deliver((r.id for r in inserted if r.status == NotificationStatus.PENDING), queue=DELIVERIES)
    return [Routed(r.id, r.status) for r in inserted]


def post_incident(
    incident: Incident, *, channel_ids: Iterable[int] | None = None, now: datetime | None = None
) -> list[Routed]:
    """Post an incident (its latest firing event) to its customer's chat channels, or to `channel_ids` of them:
    what an escalation step naming chat channels does. A channel already told of that event is not told again."""
    latest = db.session.scalar(
        db.select(Event)
        .where(Event.incident_id == incident.id, Event.status == EventStatus.FIRING)
        .order_by(Event.id.desc())
        .limit(1)
    )
    return fan_out([latest], now=now, channel_ids=channel_ids) if latest is not None else []


def incident_link(incident_id: int | None) -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    return f"{base}/incidents/{incident_id}" if incident_id else f"{base}/"


def message(event: Event, *, interactive: bool) -> ChatMessage:
    """What a chat channel is told of `event`; `interactive`: a Slack message may carry the Acknowledge button
    (SLACK_SIGNING_SECRET set), shown while the incident waits for someone."""
    incident = db.session.get(Incident, event.incident_id) if event.incident_id else None
    customer = db.session.get(Customer, event.customer_id) if event.customer_id else None
    subject, _ = plain_text(event)
    status = str(event.status)
    if event.status == EventStatus.RESOLVED:
        headline = f"Resolved · {event.title}"
    elif event.status == EventStatus.ACKNOWLEDGED:
        headline = event.title  # "Acknowledged: <title>"
    else:
        headline = f"{str(event.severity).upper()} · {event.title}"
    labels = {k: str(v) for k, v in (event.labels or {}).items() if k in KEY_LABELS and k != "alertname" and v}
    waiting = incident is not None and incident.state == IncidentState.TRIGGERED and event.status == EventStatus.FIRING
    return ChatMessage(
        headline=cut(headline, 150),
        title=event.title or subject,
        severity=str(event.severity),
        status=status,
        link=incident_link(event.incident_id),
        customer=customer.name if customer else None,
        text=cut(event.body or "", 1500),
        labels=labels,
        ack_value=f"{ACK_PREFIX}{incident.id}" if interactive and waiting else None,
    )


def test_message(text: str) -> ChatMessage:
    """A test post from a chat channel's page."""
    return ChatMessage(
        headline="OpsRelay test message",
        title=text,
        severity="info",
        status="test",
        link=incident_link(None),
    )
