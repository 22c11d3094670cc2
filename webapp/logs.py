"""One JSON log line per record, with the request or job id when there is one."""

from __future__ import annotations

import json
import logging
import re

from flask import g, has_request_context
from rq import get_current_job


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        job = get_current_job()
        if job is not None:
            entry["job_id"] = job.id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# A credential in a query string (?api_key=..., &token=...) is never written to a log line.
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:api_key|apikey|key|token|access_token|password|secret)=)[^&;\s\"']*")
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


def redact(text: str) -> str:
    """`text` with the values of credential query parameters replaced by [redacted]."""
    return _SECRET_QUERY.sub(r"\1[redacted]", text)


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
    """Log to stderr: JSON lines in production, readable text in development."""
    root = logging.getLogger()
    root.setLevel(level)
    # The twilio client logs every request's headers and every response at INFO: ten lines per SMS,
    # a visible share of a delivery's cost. Its warnings and errors still show; ours say what was sent.
    logging.getLogger("twilio.http_client").setLevel(max(level, logging.WARNING))
    install_redaction()
    if any(isinstance(h, _Marked) for h in root.handlers):
        return
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = _Marked()
    handler.addFilter(RedactSecrets())
    handler.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
