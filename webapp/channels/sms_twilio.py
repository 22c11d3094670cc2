"""SMS through Twilio's Messages API, with the twilio package's own client.

Sends run on several threads at once (the worker's send pool): each thread keeps its own client and HTTP
session (keep-alive connections, and the last response's headers for Retry-After), built on first use.
Every send first waits for its sender's slot (webapp.channels.pacing), so a storm stays within Twilio's
rate per sender. With a Messaging Service SID, messages go out through the service's sender pool
(`messaging_service_sid` instead of `from_`), paced at the service's rate.
"""

from __future__ import annotations

import logging
import threading

import requests
import twilio.rest.api  # noqa: F401 -- loaded now, not by the first message while every send thread waits
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from webapp.channels.base import PermanentError, SendResult, TransientError
from webapp.channels.pacing import Pacer

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

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None,
        api_base_url: str,
        timeout: int,
        messaging_service_sid: str | None = None,
        pacer: Pacer | None = None,
        calls_pacer: Pacer | None = None,
    ):
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.sender = messaging_service_sid or from_number  # whose rate a message uses
        self.pacer = pacer
        self.calls_pacer = calls_pacer  # the account's calls per second (webapp.channels.voice_twilio)
        self._settings = (account_sid, auth_token, api_base_url, timeout)
        self._local = threading.local()

    def _client(self) -> tuple[Client, _HeaderKeepingHttpClient]:
        """This thread's client: one requests Session each, so connections are kept alive and reused."""
        found = getattr(self._local, "client", None)
        if found is None:
            account_sid, auth_token, api_base_url, timeout = self._settings
            http = _HeaderKeepingHttpClient(timeout=timeout)
            _read_environment_once(http.session, api_base_url)
            client = Client(account_sid, auth_token, http_client=http)
            client.api.base_url = api_base_url
            found = self._local.client = (client, http)
        return found

    @property
    def client(self) -> Client:
        """This thread's twilio client (the voice channel places calls with it)."""
        return self._client()[0]

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        options = {"to": to, "body": body}
        if self.messaging_service_sid:
            options["messaging_service_sid"] = self.messaging_service_sid
        else:
            options["from_"] = self.from_number
        if status_callback:
            options["status_callback"] = status_callback
        if self.pacer is not None:
            self.pacer.wait_for_slot(self.sender)  # Paced (a TransientError) if the slot is too far away
        client, http = self._client()
        try:
            message = client.messages.create(**options)
        except TwilioRestException as exc:
            raise self._classify(exc, http.last_headers) from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"could not reach Twilio: {type(exc).__name__}", code="network") from None
        return SendResult(provider_id=message.sid)

    def _classify(self, exc: TwilioRestException, headers: dict | None = None) -> Exception:
        """Permanent or transient (with Retry-After from `headers`, else this thread's last response)."""
        headers = self._client()[1].last_headers if headers is None else headers
        code = exc.code
        message = f"Twilio {exc.status}" + (f" error {code}" if code else "") + f": {exc.msg}"
        if code in PERMANENT_CODES:
            return PermanentError(f"{message} ({PERMANENT_CODES[code]})", code=str(code))
        if exc.status == 429 or code in RATE_LIMIT_CODES or exc.status >= 500:
            return TransientError(message, code=str(code or exc.status), retry_after=_retry_after(headers))
        return PermanentError(message, code=str(code or exc.status))
