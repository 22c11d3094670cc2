"""Posting one claimed chat Notification (Slack, Microsoft Teams) to its incoming webhook.

The URL comes from the row's chat channel (a customer's) or from the person's preference that routed it (their
own webhook); it is decrypted only here, for the POST. The post goes through HttpWebhook.post_json, the client
of outgoing webhooks: the egress policy (loopback, private and metadata addresses refused unless
allow-listed), no redirects, and the same outcome rules (no answer, 5xx, 408, 429: retried; another 4xx or
a refused address: failed for good).
"""

from __future__ import annotations

import json

from flask import current_app

from webapp.channels import slack, teams
from webapp.channels.base import PermanentError, SendResult
from webapp.channels.chat import ChatMessage
from webapp.channels.webhook_http import HttpWebhook
from webapp.extensions import db
from webapp.models import Channel, ChatChannel, Event, Notification, NotificationPreference, User
from webapp.security import decrypt_secret
from webapp.services.routing import chat, rules


class Skip(Exception):
    """The row must not go out (its channel was turned off): the message says why."""


def body_for(channel: Channel, message: ChatMessage) -> bytes:
    """The JSON the chat tool takes: Slack's blocks or Teams' Adaptive Card."""
    shaped = slack.payload(message) if channel == Channel.SLACK else teams.payload(message)
    return json.dumps(shaped, separators=(",", ":")).encode()


def send(notification: Notification, event: Event | None, *, backend: HttpWebhook) -> SendResult:
    """Post the row; SendResult, or TransientError / PermanentError, or Skip (a channel disabled meanwhile)."""
    channel = Channel(notification.channel)
    url = _url(notification, channel)
    interactive = channel == Channel.SLACK and bool(current_app.config.get("SLACK_SIGNING_SECRET"))
    if event is not None:
        message = chat.message(event, interactive=interactive)
    else:  # a test post from the channel's page: its own text
        message = chat.test_message(notification.body or "Test message")
    attempt = backend.post_json(url=url, body=body_for(channel, message))
    if attempt.ok:
        return SendResult(provider_id=f"{channel}-{notification.id}")
    raise attempt.failure(f"{notification.recipient}: {attempt.error}")


def _url(notification: Notification, channel: Channel) -> str:
    if notification.chat_channel_id is not None:
        row = db.session.get(ChatChannel, notification.chat_channel_id)
        if row is None:
            raise PermanentError("the chat channel was deleted", code="no_channel")
        if not row.enabled:
            raise Skip(f"chat channel {row.name!r} is disabled")
        token = row.webhook_url_encrypted
    else:
        token = _own_url(notification, channel)
    if not token:
        raise PermanentError(f"no {channel.label} webhook URL is stored any more", code="no_recipient")
    try:
        return decrypt_secret(token)
    except ValueError as exc:
        raise PermanentError(f"{channel.label} webhook: {exc}", code="secret") from None


def _own_url(notification: Notification, channel: Channel) -> str | None:
    """The person's own webhook, from the preference that applies now (the same choice routing made)."""
    user = db.session.get(User, notification.user_id or 0)
    if user is None:
        return None
    customer_id = notification.customer_id
    prefs = {
        (p.user_id, p.customer_id): p
        for p in db.session.scalars(
            db.select(NotificationPreference).where(
                NotificationPreference.user_id == user.id,
                NotificationPreference.customer_id.is_(None)
                | (NotificationPreference.customer_id == (customer_id or 0)),
            )
        )
    }
    found = rules.pick(
        prefs, user_id=user.id, role=user.role, user_timezone=user.timezone, customer_id=customer_id, customer_name=None
    )
    return found.chat_urls.get(channel)
