"""A loopback webhook receiver that checks OpsRelay's signature with the README's own example code."""

from __future__ import annotations

import re
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.loopback_http import LoopbackHTTPServer

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_verifier():
    """exec() the README's receiver example and return its verify_opsrelay_signature function."""
    text = README.read_text()
    match = re.search(r"<!-- receiver-example -->\s*```python\n(.*?)```\s*<!-- /receiver-example -->", text, re.S)
    assert match, "the README's receiver example is missing"
    namespace: dict = {}
    exec(compile(match[1], "README.md receiver example", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify_opsrelay_signature"]


class Receiver:
    """Answers 200 to well-signed requests, 401 otherwise, or what a test scripted (`fail_next(500, times=2)`).

    Without a secret it is a chat tool's incoming webhook (Slack, Teams): its URL is the credential, nothing is
    signed, so every request not scripted otherwise is accepted."""

    def __init__(self, secret: str | None = None):
        self.secret = secret
        self.verify = readme_verifier()
        self.accepted: list[dict] = []  # {"headers", "body"} of requests that passed the check
        self.requests = 0
        self.rejected = 0
        self._script: deque[int] = deque()
        self._lock = threading.Lock()
        self._server = LoopbackHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/opsrelay"

    def fail_next(self, status: int, *, times: int = 1) -> None:
        with self._lock:
            self._script.extend([status] * times)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests += 1
                    scripted = receiver._script.popleft() if receiver._script else None
                if scripted is not None:
                    status = scripted
                elif receiver.secret is None or receiver.verify(receiver.secret, self.headers, body):
                    status = 200
                    with receiver._lock:
                        receiver.accepted.append({"headers": dict(self.headers), "body": body})
                else:
                    status = 401
                    with receiver._lock:
                        receiver.rejected += 1
                answer = b"ok" if status == 200 else f"refused with {status}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler
