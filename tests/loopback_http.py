"""The HTTP server of the loopback stand-ins (Twilio, webhook receivers)."""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class LoopbackHTTPServer(ThreadingHTTPServer):
    """Listens with a backlog for many workers' connections at once (the default 5 overflows when two send
    pools connect together, and an overflowed handshake ends as a reset the client reports as a network error)."""

    request_queue_size = 128
