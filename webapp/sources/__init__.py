"""Webhook sources: one module per sender with a *pure* parser (payload dict -> list[NormalisedEvent], or
InvalidPayload naming each bad field). No request, no database, no side effects: the webhook blueprints
authenticate and read the body, `services.events.ingest` stores and routes, and the routing preview runs
the same parsers on a pasted body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webapp.sources import alertmanager, generic, github, pagerduty
from webapp.sources.normalised import NormalisedEvent

PARSERS: dict[str, Callable[[dict[str, Any]], list[NormalisedEvent]]] = {
    alertmanager.SOURCE: alertmanager.parse,
    pagerduty.SOURCE: pagerduty.parse,
    github.SOURCE: github.parse,
    generic.SOURCE: generic.parse,
}
