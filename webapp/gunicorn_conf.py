"""gunicorn's settings for the Procfile's web process (`gunicorn -c python:webapp.gunicorn_conf ...`).

- The access log never shows an API key or token: `?api_key=` and other secret query values, and secret-looking
  values anywhere in the line, are redacted (webapp.logs.redact); each line ends with the request id.
- With PROMETHEUS_MULTIPROC_DIR (several workers, one /metrics), a worker that exits has its live gauges
  marked dead, so a scrape adds up only what the living and the finished processes recorded.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from webapp import logs, metrics  # metrics first creates PROMETHEUS_MULTIPROC_DIR if it is set

access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" request_id=%({x-request-id}o)s'


class RedactingLogger(Logger):
    """gunicorn's logger with the secret-looking values of the request line, query and referer redacted."""

    def atoms(self, resp, req, environ, request_time):
        found = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "f", "{authorization}i"):
            if isinstance(found.get(key), str):
                found[key] = logs.redact(found[key])
        return found


logger_class = RedactingLogger


def child_exit(server, worker) -> None:
    if metrics.multiprocess_mode():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
