"""Slack: a Block Kit message for an incoming webhook, and the signature of Slack's interaction requests.

The message: a header (severity and title), a section with the title linked to the incident page, its text and
fields (severity, customer, key labels), and buttons: "Open in OpsRelay", and "Acknowledge" when the message
carries an `ack_value` (only when SLACK_SIGNING_SECRET is set, so the click can be verified).

Slack signs interaction requests: X-Slack-Signature = "v0=" + hex HMAC-SHA256 of
"v0:{X-Slack-Request-Timestamp}:{raw body}" with the app's signing secret.
"""

from __future__ import annotations

from webapp.channels.chat import SEVERITY_MARK, ChatMessage, cut

ACK_ACTION = "acknowledge"


def escape(text: str) -> str:
    """Text for mrkdwn: &, < and > are Slack's control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _field(name: str, value: str) -> dict:
    return {"type": "mrkdwn", "text": cut(f"*{escape(name)}*\n{escape(value)}", 2000)}


def blocks(message: ChatMessage, *, note: str | None = None) -> list[dict]:
    """The message's blocks; `note` (e.g. "Acknowledged by Alice") replaces the buttons, when given."""
    mark = SEVERITY_MARK.get(message.severity, "")
    title = escape(cut(message.title, 500)).replace("|", "¦")
    text = f"*<{message.link}|{title}>*"
    if message.text:
        text += "\n" + escape(cut(message.text, 2500))
    fields = [_field("Severity", message.severity), _field("Status", message.status)]
    if message.customer:
        fields.append(_field("Customer", message.customer))
    fields += [_field(name, value) for name, value in list(message.labels.items())[:7]]  # at most 10 fields
    found = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(f"{mark} {message.headline}".strip(), 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, 3000)}, "fields": fields},
    ]
    if note is not None:
        found.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(cut(note, 300))}]})
        return found
    buttons = [
        {
            "type": "button",
            "action_id": "open",
            "text": {"type": "plain_text", "text": "Open in OpsRelay"},
            "url": message.link,
        }
    ]
    if message.ack_value:
        buttons.append(
            {
                "type": "button",
                "action_id": ACK_ACTION,
                "style": "primary",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "value": message.ack_value,
            }
        )
    found.append({"type": "actions", "elements": buttons})
    return found


def payload(message: ChatMessage) -> dict:
    """The JSON an incoming webhook takes: `text` (the notification's line) and the blocks."""
    return {"text": cut(message.fallback, 300), "blocks": blocks(message)}


def base_string(timestamp: str, body: bytes) -> bytes:
    """What Slack signs: v0:{timestamp}:{raw body}."""
    return b"v0:" + timestamp.encode() + b":" + body
