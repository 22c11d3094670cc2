"""A loopback HTTP server that answers like Twilio's Messages and Calls APIs, so the twilio client's own code runs.

It checks HTTP Basic auth against the account SID and auth token, takes the form fields Twilio takes,
and answers 201 with a message (or call) resource, or what a test scripted for a recipient: 400 with code 21211
for an invalid number, 429 with code 20429 and Retry-After, 500, and so on.

`per_sender_per_second` enforces Twilio's rate per sender (the From number or the MessagingServiceSid)
as a bucket of that many messages refilled at that rate: a message beyond it gets 429 with error 20429,
as Twilio answers a sender that goes too fast; `calls_per_second` does the same for the account's calls (CPS);
`rate_limited` counts those answers.

Calls: it keeps the TwiML and parameters of each call (`calls`), and plays Twilio's part afterwards: `press()`
reads the call's TwiML, finds its <Gather> action and posts the digits there, signed as Twilio signs; `report()`
posts a signed status callback (ringing, completed, no-answer, ... with AnsweredBy) to the call's StatusCallback.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

from tests.loopback_http import LoopbackHTTPServer

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Messages\.json$")
CALLS_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Calls\.json$")

ERRORS = {
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21408: (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."),
    21614: (400, "'To' number is not a valid mobile number"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20003: (401, "Authenticate"),
}


@dataclass
class Scripted:
    error_code: int
    headers: dict = field(default_factory=dict)


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.received: list[dict] = []  # every accepted request's form fields, in order
        self.calls: list[dict] = []  # every accepted call's form fields (Twiml, StatusCallback, ...) and "sid"
        self.requests = 0
        self.answer_delay = 0.0  # seconds between accepting a message and answering (a slow provider)
        self.received_times: list[float] = []  # time.time() of each accepted message, as `received`
        self.failing: tuple[int, dict] | None = None  # (error code, headers): every message refused while set
        self.per_sender_per_second: float | None = None  # Twilio's rate limit per sender, when set
        self.calls_per_second: float | None = None  # Twilio's calls per second for the account (CPS), when set
        self.rate_limited = 0  # 429 answers given for going over that rate
        self.in_flight = 0  # accepted messages whose answer is still being delayed (answer_delay)
        self.max_in_flight = 0  # the most at once: how many calls a client had open together
        self._buckets: dict[str, tuple[float, float]] = {}  # sender -> (tokens, at time.monotonic())
        self._script: dict[str, deque[Scripted]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = LoopbackHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, to: str, error_code: int, *, times: int = 1, headers: dict | None = None) -> None:
        """The next `times` messages to `to` get Twilio's answer for `error_code`."""
        with self._lock:
            for _ in range(times):
                self._script[to].append(Scripted(error_code, headers or {}))

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.calls.clear()
            self._script.clear()
            self.requests = 0
            self.answer_delay = 0.0
            self.received_times.clear()
            self.failing = None
            self.per_sender_per_second = None
            self.calls_per_second = None
            self.rate_limited = 0
            self._buckets.clear()
            self.in_flight = self.max_in_flight = 0

    def _over_rate(self, sender: str, rate: float | None = None) -> bool:
        """Take one token from the sender's bucket (a call: the account's, at calls_per_second); True (counted)
        if it had none."""
        rate = rate or self.per_sender_per_second
        if not rate:
            return False
        with self._lock:
            now = time.monotonic()
            tokens, at = self._buckets.get(sender, (rate, now))
            tokens = min(rate, tokens + (now - at) * rate)
            if tokens < 1:
                self._buckets[sender] = (tokens, now)
                self.rate_limited += 1
                return True
            self._buckets[sender] = (tokens - 1, now)
            return False

    def call(self, sid: str) -> dict:
        return next(call for call in self.calls if call["sid"] == sid)

    def gather_action(self, sid: str) -> str:
        """The URL the call's first <Gather> posts the digits to, read from the TwiML the call was given."""
        root = ElementTree.fromstring(self.call(sid)["Twiml"])  # noqa: S314 - the app's own TwiML, in a test
        return root.find("Gather").get("action")

    def press(self, sid: str, digits: str, client, *, public_base_url: str, token: str | None = None):
        """The person answered call `sid` and pressed `digits`: Twilio's signed Gather callback, through `client`
        (a Flask test client: the URL's PUBLIC_BASE_URL part is where Twilio would reach the app)."""
        call = self.call(sid)
        params = {
            "CallSid": sid,
            "AccountSid": self.account_sid,
            "From": call["From"],
            "To": call["To"],
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "Digits": digits,
        }
        return self._signed(client, self.gather_action(sid), params, public_base_url, token)

    def report(self, sid: str, status: str, client, *, public_base_url: str, token: str | None = None, **extra):
        """Twilio's status callback for call `sid` (CallStatus `status`, plus e.g. AnsweredBy, CallDuration)."""
        call = self.call(sid)
        params = {"CallSid": sid, "AccountSid": self.account_sid, "CallStatus": status, "To": call["To"], **extra}
        return self._signed(client, call["StatusCallback"], params, public_base_url, token)

    def _signed(self, client, url: str, params: dict, public_base_url: str, token: str | None):
        signature = RequestValidator(token or self.auth_token).compute_signature(url, params)
        assert url.startswith(public_base_url), f"{url} is not under {public_base_url}"
        return client.post(url.removeprefix(public_base_url), data=params, headers={"X-Twilio-Signature": signature})

    def _next_script(self, to: str) -> Scripted | None:
        with self._lock:
            self.requests += 1
            queue = self._script.get(to)
            return queue.popleft() if queue else None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Twilio's API: the client reuses its connection
            disable_nagle_algorithm = True  # headers and body go out at once, no delayed-ACK stall

            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, code: int, headers: dict | None = None, **fmt) -> None:
                status, message = ERRORS[code]
                self._reply(
                    status,
                    {
                        "code": code,
                        "message": message.format(**fmt),
                        "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status,
                    },
                    headers,
                )

            def _authorized_fields(self, match) -> dict[str, list[str]] | None:
                """The request's form fields (every value), or None once it was refused (bad Basic auth)."""
                expected = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}" or match["sid"] != fake.account_sid:
                    self._error(20003)
                    return None
                length = int(self.headers.get("Content-Length") or 0)
                return parse_qs(self.rfile.read(length).decode())

            def do_POST(self):  # noqa: N802
                for path, handle in ((MESSAGES_PATH, self._message), (CALLS_PATH, self._call)):
                    match = path.match(self.path)
                    if match:
                        fields = self._authorized_fields(match)
                        if fields is not None:
                            handle(fields)
                        return
                self._reply(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})

            def _message(self, fields: dict[str, list[str]]) -> None:
                form = {k: v[0] for k, v in fields.items()}
                to = form.get("To", "")
                sender = form.get("MessagingServiceSid") or form.get("From")
                if not form.get("Body") or not sender or not to:
                    self._reply(400, {"code": 21602, "message": "Message body is required.", "status": 400})
                    return
                scripted = fake._next_script(to)
                if scripted is None and fake.failing is not None:
                    scripted = Scripted(*fake.failing)
                if scripted is None and fake._over_rate(sender):
                    scripted = Scripted(20429, {"Retry-After": "1"})
                if scripted is not None:
                    self._error(scripted.error_code, scripted.headers, to=to)
                    return
                sid = "SM" + uuid.uuid4().hex
                with fake._lock:
                    fake.received.append({**form, "sid": sid})
                    fake.received_times.append(time.time())
                if fake.answer_delay:
                    with fake._lock:
                        fake.in_flight += 1
                        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    time.sleep(fake.answer_delay)  # accepted: a client killed now has sent the SMS
                    with fake._lock:
                        fake.in_flight -= 1
                self._reply(
                    201,
                    {
                        "sid": sid,
                        "account_sid": fake.account_sid,
                        "to": to,
                        "from": form.get("From"),
                        "messaging_service_sid": form.get("MessagingServiceSid"),
                        "body": form["Body"],
                        "status": "queued",
                        "num_segments": "1",
                        "direction": "outbound-api",
                        "api_version": "2010-04-01",
                        "price": None,
                        "error_code": None,
                        "error_message": None,
                        "uri": f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}.json",
                    },
                )

            def _call(self, fields: dict[str, list[str]]) -> None:
                form = {k: v[0] for k, v in fields.items()}
                form["StatusCallbackEvent"] = fields.get("StatusCallbackEvent", [])  # repeated: every value
                to = form.get("To", "")
                if not form.get("From") or not to or not (form.get("Twiml") or form.get("Url")):
                    self._reply(400, {"code": 21205, "message": "Url or Twiml parameter is required.", "status": 400})
                    return
                scripted = fake._next_script(to)
                if scripted is None and fake.calls_per_second and fake._over_rate("calls", fake.calls_per_second):
                    scripted = Scripted(20429, {"Retry-After": "1"})
                if scripted is not None:
                    self._error(scripted.error_code, scripted.headers, to=to)
                    return
                sid = "CA" + uuid.uuid4().hex
                with fake._lock:
                    fake.calls.append({**form, "sid": sid})
                self._reply(
                    201,
                    {
                        "sid": sid,
                        "account_sid": fake.account_sid,
                        "to": to,
                        "from": form["From"],
                        "status": "queued",
                        "direction": "outbound-api",
                        "answered_by": None,
                        "api_version": "2010-04-01",
                        "uri": f"/2010-04-01/Accounts/{fake.account_sid}/Calls/{sid}.json",
                    },
                )

        return Handler
