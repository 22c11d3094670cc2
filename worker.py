"""The RQ worker (Procfile `worker:`): runs jobs in the app context; a child process runs the periodic jobs."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys

from webapp import create_app
from webapp.queue import get_queue

log = logging.getLogger("worker")


def _run_cron() -> None:
    app = create_app()
    get_queue(app).cron().start()


def main() -> int:
    app = create_app()
    queue = get_queue(app)
    if queue.embedded:
        print("worker.py needs REDIS_URL; without it the web process runs its own embedded worker.", file=sys.stderr)
        return 2
    cron = multiprocessing.get_context("fork").Process(target=_run_cron, name="opsrelay-cron", daemon=True)
    cron.start()
    try:
        worker = queue.worker()
        log.info("worker %s on %s (pid %s)", worker.name, ", ".join(queue.queues), os.getpid())
        worker.work(with_scheduler=True, logging_level=os.environ.get("LOG_LEVEL", "INFO"))
    finally:
        cron.terminate()
        cron.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
