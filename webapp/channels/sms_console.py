"""The development SMS backend: logs the message and marks it simulated."""

from __future__ import annotations

import logging
import uuid

from webapp.channels.base import SendResult
from webapp.validation import mask_phone

log = logging.getLogger(__name__)


class ConsoleSms:
    simulated = True

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        provider_id = "SIM" + uuid.uuid4().hex
        log.info("simulated SMS %s to %s (%d chars):\n%s", provider_id, mask_phone(to), len(body), body)
        return SendResult(provider_id=provider_id, simulated=True)
