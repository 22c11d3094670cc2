"""SMS through Twilio's Messages API, with the twilio package's own client."""

from __future__ import annotations

import logging

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from webapp.channels.base import PermanentError, SendResult, TransientError

log = logging.getLogger(__name__)

# Twilio error codes that no retry will fix.
PERMANENT_CODES = {
    21211: "invalid 'To' phone number",
    21408: "permission to send to this region is not enabled",
    21610: "the recipient has replied STOP (unsubscribed)",
    21614: "'To' number is not a mobile number",
}
RATE_LIMIT_CODES = {20429, 14107}


class _HeaderKeepingHttpClient(TwilioHttpClient):
    """Keeps the last response's headers: the client raises without them, and we need Retry-After."""

    last_headers: dict = {}

    def request(self, *args, **kwargs):
        self.last_headers = {}
        response = super().request(*args, **kwargs)
        self.last_headers = dict(response.headers or {})
        return response


def _retry_after(headers: dict) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _read_environment_once(session: requests.Session, url: str) -> None:
    """Take the proxy and CA bundle settings (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) from the
    environment now, for the API's URL, instead of on every message: requests scans the whole
    environment per request otherwise, a visible share of a message's CPU."""
    settings = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(settings["proxies"] or {})
    session.verify = settings["verify"]
    session.trust_env = False


class TwilioSms:
    simulated = False

    def __init__(self, *, account_sid: str, auth_token: str, from_number: str, api_base_url: str, timeout: int):
        self.from_number = from_number
        self.http = _HeaderKeepingHttpClient(timeout=timeout)  # one requests Session: keep-alive connections
        _read_environment_once(self.http.session, api_base_url)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.client.api.base_url = api_base_url

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        options = {"to": to, "from_": self.from_number, "body": body}
        if status_callback:
            options["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**options)
        except TwilioRestException as exc:
            raise self._classify(exc) from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"could not reach Twilio: {type(exc).__name__}", code="network") from None
        return SendResult(provider_id=message.sid)

    def _classify(self, exc: TwilioRestException) -> Exception:
        code = exc.code
        message = f"Twilio {exc.status}" + (f" error {code}" if code else "") + f": {exc.msg}"
        if code in PERMANENT_CODES:
            return PermanentError(f"{message} ({PERMANENT_CODES[code]})", code=str(code))
        if exc.status == 429 or code in RATE_LIMIT_CODES or exc.status >= 500:
            return TransientError(
                message, code=str(code or exc.status), retry_after=_retry_after(self.http.last_headers)
            )
        return PermanentError(message, code=str(code or exc.status))
