"""What a chat channel (Slack, Microsoft Teams) is told about an event, before either tool's format shapes it.

Both post to an incoming webhook with HttpWebhook.post_json (the egress policy, the same retry rules as
outgoing webhooks); webapp.channels.slack and webapp.channels.teams turn a ChatMessage into their JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SEVERITY_MARK = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "🔵", "info": "⚪"}


@dataclass(frozen=True)
class ChatMessage:
    headline: str  # "CRITICAL · DiskFull", "Resolved · DiskFull"
    title: str
    severity: str
    status: str  # the event's: firing, resolved, acknowledged
    link: str  # the incident's page (or OpsRelay's front page)
    customer: str | None = None
    text: str = ""  # the event's body, shortened
    labels: Mapping[str, str] = field(default_factory=dict)  # the few labels people triage by
    ack_value: str | None = None  # set: offer an Acknowledge button carrying this value (Slack)

    @property
    def fallback(self) -> str:
        """One line for notifications and clients that show no blocks or cards."""
        return f"{self.headline}: {self.title}" if self.title not in self.headline else self.headline


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
