"""Microsoft Teams: a message with an Adaptive Card (version 1.4) for an incoming webhook (or a Workflows
"post to a channel when a webhook request is received" URL, which takes the same body).

The card: the headline (coloured by severity), the title, the text, a FactSet (severity, status, customer,
key labels) and an Action.OpenUrl to the incident page.
"""

from __future__ import annotations

from webapp.channels.chat import SEVERITY_MARK, ChatMessage, cut

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
COLOUR = {"critical": "Attention", "high": "Warning", "medium": "Warning", "low": "Accent", "info": "Default"}


def card(message: ChatMessage) -> dict:
    facts = [{"title": "Severity", "value": message.severity}, {"title": "Status", "value": message.status}]
    if message.customer:
        facts.append({"title": "Customer", "value": message.customer})
    facts += [{"title": name, "value": cut(value, 300)} for name, value in message.labels.items()]
    body = [
        {
            "type": "TextBlock",
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "Good" if message.status == "resolved" else COLOUR.get(message.severity, "Default"),
            "text": cut(f"{SEVERITY_MARK.get(message.severity, '')} {message.headline}".strip(), 300),
        },
        {"type": "TextBlock", "wrap": True, "weight": "Bolder", "text": cut(message.title, 500)},
    ]
    if message.text:
        body.append({"type": "TextBlock", "wrap": True, "text": cut(message.text, 2500)})
    body.append({"type": "FactSet", "facts": facts})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in OpsRelay", "url": message.link}],
    }


def payload(message: ChatMessage) -> dict:
    """The JSON an incoming webhook takes: a message with one Adaptive Card attachment."""
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": card(message)}],
    }
