"""Outgoing webhooks: a signed JSON POST, and what came back (every attempt is recorded by the caller).

Signature: X-OpsRelay-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the endpoint's
secret>, with X-OpsRelay-Timestamp: <unix seconds>, so a receiver can refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from http import HTTPStatus

import requests

from webapp import egress, logs
from webapp.channels.base import ChannelError, PermanentError, TransientError

USER_AGENT = "OpsRelay-Webhooks/1"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None
    retry_after: float | None = None
    blocked: bool = False  # refused by the egress policy: retrying cannot help

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, a 5xx, 408 or 429. Other 4xx mean the receiver refuses this."""
        if self.blocked:
            return False
        return self.status_code is None or self.status_code >= 500 or self.status_code in (408, 429)

    def failure(self, message: str) -> ChannelError:
        """The delivery's error for this failed attempt: try again later (`transient`) or fail for good."""
        if self.transient:
            return TransientError(message, code=str(self.status_code or "network"), retry_after=self.retry_after)
        return PermanentError(message, code="egress" if self.blocked else str(self.status_code))


def _phrase(status: int) -> str:
    """The standard reason phrase (the peer's own is not shown)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class HttpWebhook:
    def __init__(self, *, timeout: float):
        self.timeout = timeout
        self.session = egress.http_session()  # checked addresses only, no proxies, no redirects

    def post(self, *, url: str, secret: str, body: bytes, event_name: str, delivery_id: str) -> Attempt:
        timestamp = str(int(time.time()))
        headers = {
            "X-OpsRelay-Event": event_name,
            "X-OpsRelay-Delivery": delivery_id,
            "X-OpsRelay-Timestamp": timestamp,
            "X-OpsRelay-Signature": signature(secret, timestamp, body),
        }
        return self.post_json(url=url, body=body, headers=headers)

    def post_json(self, *, url: str, body: bytes, headers: dict[str, str] | None = None) -> Attempt:
        """POST a JSON body under the egress policy and say what came back (chat channels post unsigned: the
        incoming webhook's URL is their credential)."""
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        request_id = logs.current_request_id()  # of the webhook that led to this delivery
        if request_id:
            headers["X-Request-ID"] = request_id
        started = time.perf_counter()
        try:
            response = self.session.post(url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout as exc:  # the peer's own words are never shown; only which of these it was
            latency = int((time.perf_counter() - started) * 1000)
            connected = isinstance(exc, requests.ReadTimeout)
            message = f"no answer within {self.timeout:g} s" if connected else egress.COULD_NOT_CONNECT
            return Attempt(None, latency, message, None)
        except requests.RequestException as exc:
            latency = int((time.perf_counter() - started) * 1000)
            message = egress.user_message(exc)
            return Attempt(None, latency, message, None, blocked=message == egress.BLOCKED)
        latency = int((time.perf_counter() - started) * 1000)
        retry_after = None
        try:
            retry_after = float(response.headers["Retry-After"]) if "Retry-After" in response.headers else None
        except ValueError:
            retry_after = None
        status = response.status_code
        if 300 <= status < 400:  # never followed, never quoted
            return Attempt(status, latency, f"HTTP {status}: redirects are not followed", None, retry_after)
        error = None if 200 <= status < 300 else f"HTTP {status} {_phrase(status)}".rstrip()
        return Attempt(status, latency, error, egress.excerpt(response.text), retry_after)
