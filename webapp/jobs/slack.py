"""Slack's follow-up to an Acknowledge click: the message that replaces the clicked one, posted to the click's
response_url (Slack updates a message from a block action only through that URL), under the egress policy."""

from __future__ import annotations

from flask import current_app

from webapp.channels.webhook_http import HttpWebhook


def reply(response_url: str, body: str) -> str:
    attempt = HttpWebhook(timeout=current_app.config["WEBHOOK_TIMEOUT"]).post_json(url=response_url, body=body.encode())
    return "replaced the message" if attempt.ok else f"not replaced: {attempt.error}"
