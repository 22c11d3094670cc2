"""The RQ worker (Procfile `worker:`): runs jobs in the app context, and outlives Redis outages.

The process is a supervisor around RQ: when RQ's own bookkeeping fails (Redis went away mid-job or
between jobs), the worker it ran is dropped, the process waits for Redis with a growing pause, and a
fresh worker takes over -- it never exits on a connection error. A scheduler thread (webapp.queue.Scheduler)
enqueues the periodic jobs and moves due retries onto their queues; a Redis lock makes one of all the
running workers act, and its loop cannot die from an error. Delivery jobs hand their rows to the
process's send pool (DELIVERY_CONCURRENCY provider calls at once: webapp.jobs.sendpool). SIGTERM/SIGINT:
finish the job in hand and the sends in the pool, then stop (a second signal stops at once, as RQ does).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from redis.exceptions import RedisError

from webapp import create_app
from webapp.queue import AppWorker, get_queue

log = logging.getLogger("worker")
MAX_PAUSE_SECONDS = 2.0  # between pings while Redis is away: back within a sweep interval


class SupervisedWorker(AppWorker):
    """Tells the supervisor when a stop was asked for, so it does not start another worker."""

    stop_event: threading.Event | None = None

    def request_stop(self, signum, frame):
        if self.stop_event is not None:
            self.stop_event.set()
        super().request_stop(signum, frame)


def wait_for_redis(queue, stop: threading.Event) -> bool:
    """Block until Redis answers (True) or a stop is asked for (False)."""
    pause = 0.2
    while not stop.is_set():
        if queue.ping():
            return True
        stop.wait(pause)
        pause = min(pause * 2, MAX_PAUSE_SECONDS)
    return False


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    app = create_app()
    queue = get_queue(app)
    if queue.embedded:
        print("worker.py needs REDIS_URL; without it the web process runs its own embedded worker.", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop_between_workers(signum, frame) -> None:
        stop.set()

    scheduler = queue.scheduler()
    scheduling = threading.Thread(target=scheduler.run, args=(stop,), name="opsrelay-scheduler", daemon=True)
    scheduling.start()
    try:
        while not stop.is_set():
            signal.signal(signal.SIGTERM, _stop_between_workers)
            signal.signal(signal.SIGINT, _stop_between_workers)
            if not wait_for_redis(queue, stop):
                break
            worker = queue.worker(SupervisedWorker)
            worker.stop_event = stop
            log.info("worker %s on %s (pid %s)", worker.name, ", ".join(queue.queues), os.getpid())
            try:
                worker.work(logging_level=os.environ.get("LOG_LEVEL", "INFO"))
            except RedisError as exc:
                log.warning("worker %s lost Redis (%s); starting a fresh one when it is back", worker.name, exc)
            except Exception:
                log.exception("worker %s stopped on an error; starting a fresh one", worker.name)
            if not stop.is_set():
                stop.wait(0.5)  # a worker that quit on its own (Redis timeout...): pause, then start again
    finally:
        stop.set()
        scheduling.join(5)
        scheduler.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
