"""The job queue: RQ on Redis, or on an embedded fakeredis with a worker thread in the web process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import fakeredis
from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.job import Job
from rq.results import Result
from rq.timeouts import TimerDeathPenalty

from webapp import logs, metrics
from webapp.extensions import db

log = logging.getLogger(__name__)

DELIVERIES = "deliveries"
PERIODIC = "periodic"
QUEUE_NAMES = (DELIVERIES, PERIODIC)
DELIVER_JOB = "webapp.jobs.deliver"  # by path: the jobs import the services, which hand work to this queue


@dataclass(frozen=True)
class FailedJob:
    """A job in a queue's failed registry, as the queue page shows it."""

    id: str
    queue: str
    name: str  # the job function's name
    args: tuple
    ended_at: datetime | None
    error: str  # the last line of the exception (redacted)


@dataclass(frozen=True)
class Periodic:
    """A job the scheduler runs every `every_seconds` (webapp.jobs.PERIODIC_JOBS lists them)."""

    name: str
    func: Callable
    every_seconds: int


class AppWorker(SimpleWorker):
    """Runs each job in its own app context, with a fresh database session."""

    flask_app: Flask | None = None

    def perform_job(self, job: Job, queue: Queue, *args, **kwargs) -> bool:
        """Run the job with the request id it was queued with; one log line and the job metrics after it."""
        token = logs.bind_job_request_id((job.meta or {}).get("request_id"))
        started = time.perf_counter()
        finished = False
        try:
            with self.flask_app.app_context():
                try:
                    finished = super().perform_job(job, queue, *args, **kwargs)
                finally:
                    db.session.remove()
            return finished
        finally:
            name = (job.func_name or "unknown").rpartition(".")[2]
            outcome = "finished" if finished else "failed"
            metrics.jobs.labels(job=name, outcome=outcome).inc()
            if finished and queue.name == PERIODIC:
                metrics.mark_periodic_run(name)
            log.info(
                "job %s %s %s in %.1fms",
                job.id,
                name,
                outcome,
                (time.perf_counter() - started) * 1000,
                extra={"job": name, "outcome": outcome, "job_id": job.id},
            )
            logs.unbind(token)


class EmbeddedWorker(AppWorker):
    """A worker that lives in a thread of the web process: no signal handlers there."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        """Signals belong to the main thread (the web server's); stopping is done by stop_embedded_worker."""


class TaskQueue:
    def __init__(self, app: Flask, periodic: Sequence[Periodic] = ()):
        self.app = app
        self.periodic = tuple(periodic)
        self.inline = bool(app.config["RQ_INLINE"])
        url = app.config.get("REDIS_URL")
        self.embedded = not url
        self.connection: Redis = (
            Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
            if url
            else fakeredis.FakeRedis(server=fakeredis.FakeServer())
        )
        self.queues = {name: Queue(name, connection=self.connection, is_async=not self.inline) for name in QUEUE_NAMES}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def enqueue_many(self, func: Callable | str, arg_lists: list[tuple], *, queue: str = DELIVERIES) -> list[Job]:
        """Put many jobs on the queue in one round trip; raises RedisError when it cannot be reached."""
        self.ensure_embedded_worker()
        rq_queue = self.queues[queue]
        meta = _meta()
        return rq_queue.enqueue_many([Queue.prepare_data(func, args, meta=meta) for args in arg_lists])

    def enqueue_at(self, when: datetime, func: Callable | str, *args, queue: str = DELIVERIES, **options) -> Job:
        """Run the job at `when` (the RQ scheduler moves it onto the queue); raises RedisError when down."""
        self.ensure_embedded_worker()
        return self.queues[queue].enqueue_at(when, func, *args, meta=_meta(), **options)

    def failed(self, *, limit: int = 50) -> list[FailedJob]:
        """The newest failed jobs of every queue; raises RedisError when it cannot be reached."""
        found = []
        for name, rq_queue in self.queues.items():
            registry = rq_queue.failed_job_registry
            for job in Job.fetch_many(registry.get_job_ids(0, limit - 1, desc=True), connection=self.connection):
                if job is None:
                    continue
                result = job.latest_result()
                failure = result.exc_string if result is not None and result.type == Result.Type.FAILED else None
                lines = (failure or "").strip().splitlines()
                found.append(
                    FailedJob(
                        id=job.id,
                        queue=name,
                        name=(job.func_name or "?").rpartition(".")[2],
                        args=tuple(job.args or ()),
                        ended_at=job.ended_at,
                        error=logs.redact(lines[-1])[:300] if lines else "",
                    )
                )
        return sorted(found, key=lambda job: job.ended_at.timestamp() if job.ended_at else 0, reverse=True)[:limit]

    def retry_failed(self, job_id: str | None = None) -> int:
        """Put a failed job (or, without `job_id`, every failed job) back on its queue; returns how many."""
        retried = 0
        for rq_queue in self.queues.values():
            registry = rq_queue.failed_job_registry
            for found in [job_id] if job_id is not None else registry.get_job_ids():
                if found in registry:
                    registry.requeue(found)
                    retried += 1
        self.ensure_embedded_worker()
        return retried

    def ping(self) -> bool:
        try:
            return bool(self.connection.ping())
        except RedisError:
            return False

    def worker(self, worker_class: type[AppWorker] = AppWorker) -> AppWorker:
        worker = worker_class([self.queues[name] for name in QUEUE_NAMES], connection=self.connection)
        worker.flask_app = self.app
        return worker

    def cron(self) -> CronScheduler:
        scheduler = CronScheduler(connection=self.connection, logging_level=logging.WARNING)
        for periodic in self.periodic:
            scheduler.register(periodic.func, PERIODIC, interval=periodic.every_seconds, name=periodic.name)
        return scheduler

    # --- the embedded worker -------------------------------------------------------------

    def ensure_embedded_worker(self) -> None:
        """Start the in-process worker the first time it is needed (embedded queue only)."""
        if not self.embedded or self.inline or not self.app.config["EMBEDDED_WORKER"]:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run_embedded, name="opsrelay-worker", daemon=True)
                self._thread.start()
                log.info("embedded worker started (no REDIS_URL): jobs run in this process")

    @property
    def embedded_worker_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop_embedded_worker(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_embedded(self) -> None:
        worker = self.worker(EmbeddedWorker)
        cron = self.cron()
        while not self._stop.is_set():
            try:
                cron.enqueue_jobs()
                # burst + scheduler: move due retries onto the queue, run what is there, return.
                worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
            except Exception:
                log.exception("embedded worker loop failed; continuing")
            self._stop.wait(0.25)


def _meta() -> dict | None:
    """What a job carries from whoever queued it: the request id (logs.current_request_id)."""
    request_id = logs.current_request_id()
    return {"request_id": request_id} if request_id else None


def init_app(app: Flask, *, periodic: Sequence[Periodic] = ()) -> None:
    queue = TaskQueue(app, periodic)
    app.extensions["opsrelay_queue"] = queue
    # Without Redis the first request starts the in-process worker, so periodic jobs run too.
    app.before_request(queue.ensure_embedded_worker)


def get_queue(app: Flask) -> TaskQueue:
    return app.extensions["opsrelay_queue"]
