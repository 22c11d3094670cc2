"""The channel interface: send one message and say sent, retry later, or failed for good."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    simulated: bool = False


class ChannelError(Exception):
    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


class TransientError(ChannelError):
    """Worth trying again later (timeouts, 5xx, rate limits)."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    """Trying again will not help (invalid number, unsubscribed recipient, rejected address)."""


class SmsBackend(Protocol):
    simulated: bool

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult: ...
