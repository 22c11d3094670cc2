"""Webhook sources: one module per sender with a *pure* parser (payload dict -> list[NormalisedEvent], or
InvalidPayload naming each bad field). No request, no database, no side effects: the webhook blueprints
authenticate and read the body, `services.events.ingest` stores and routes, and the routing preview runs
the same parsers on a pasted body.

Which senders exist, and which module parses each, is `webapp.models.SOURCE_KINDS`: PARSERS is built from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from webapp.models import SOURCE_KINDS
from webapp.sources.normalised import NormalisedEvent

PARSERS: dict[str, Callable[[dict[str, Any]], list[NormalisedEvent]]] = {
    kind.name: importlib.import_module(f"{__name__}.{kind.parser}").parse for kind in SOURCE_KINDS
}
