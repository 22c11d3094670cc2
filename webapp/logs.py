"""Logging: one line per request and per job, the request id that follows a webhook into the jobs it queued,
JSON lines for log shippers (LOG_FORMAT=json), and no secrets in any line.

The request id is the web request's (`g.request_id`, from X-Request-ID or made up); a job queued by that
request carries it in its meta (webapp/queue.py) and binds it while it runs, so its log lines, the jobs it
queues in turn and the outgoing webhooks it sends (X-Request-ID) carry the same id.
"""

from __future__ import annotations

import json
import logging
import re
import time
from contextvars import ContextVar

from flask import Flask, g, has_request_context, request
from rq import get_current_job

_job_request_id: ContextVar[str | None] = ContextVar("opsrelay_job_request_id", default=None)

# What must never reach a log line: api_key (and token, secret, password, signature) query or form values,
# bearer credentials, OpsRelay API keys (opsr_...), and a URL's user:password.
_REDACTIONS = [
    (
        re.compile(r"(?i)\b(api_key|apikey|key|token|access_token|secret|password|signature)=[^&\s\"']*"),
        r"\1=[redacted]",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\bopsr_[A-Za-z0-9_-]+"), "opsr_[redacted]"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1[redacted]@"),
]


def redact(text: str) -> str:
    """`text` with every secret-looking value replaced by [redacted]."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def current_request_id() -> str | None:
    """The id of the web request being served, or of the request that queued the running job."""
    if has_request_context() and "request_id" in g:
        return g.request_id
    return _job_request_id.get()


def bind_job_request_id(request_id: str | None):
    """While a job runs: the request id it was queued with. Returns the token for `unbind`."""
    return _job_request_id.set(request_id)


def unbind(token) -> None:
    _job_request_id.reset(token)


class _Context(logging.Filter):
    """Adds request_id and job_id to every record, and redacts its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        if not hasattr(record, "job_id"):
            job = get_current_job()
            record.job_id = job.id if job is not None else "-"
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in ("request_id", "job_id"):
            value = getattr(record, key, "-")
            if value != "-":
                entry[key] = value
        for key in ("method", "path", "status", "duration_ms", "job", "outcome"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message carries a credential query parameter (access logs of URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_redaction() -> None:
    """Access logs (the dev server's, gunicorn's) and our own handler never show ?api_key= values."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


class _Marked(logging.StreamHandler):
    """Our handler, so configure() can tell it from ones that others (Alembic's fileConfig) installed."""


def configure(*, as_json: bool, level: int = logging.INFO) -> None:
    """Log to stderr: JSON lines (LOG_FORMAT=json) or readable text with the request id."""
    root = logging.getLogger()
    root.setLevel(level)
    # The twilio client logs every request's headers and every response at INFO: ten lines per SMS,
    # a visible share of a delivery's cost. Its warnings and errors still show; ours say what was sent.
    logging.getLogger("twilio.http_client").setLevel(max(level, logging.WARNING))
    # Werkzeug's own access line would repeat ours; whatever access lines are written are redacted.
    logging.getLogger("werkzeug").setLevel(max(level, logging.WARNING))
    install_redaction()
    if any(isinstance(h, _Marked) for h in root.handlers):
        return
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = _Marked()
    handler.addFilter(_Context())
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)


request_log = logging.getLogger("opsrelay.request")


def _start_clock() -> None:
    g.request_started = time.perf_counter()


def _log_request(response):
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    path = redact(request.full_path.rstrip("?"))
    status = response.status_code
    request_log.info(
        "%s %s %s %sms",
        request.method,
        path,
        status,
        duration_ms,
        extra={"method": request.method, "path": path, "status": status, "duration_ms": duration_ms},
    )
    return response


def init_app(app: Flask) -> None:
    """One log line per request: method, path (secrets redacted), status, duration, request id."""
    app.before_request(_start_clock)
    app.after_request(_log_request)
