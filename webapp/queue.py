"""The job queue: RQ on Redis, or on an embedded fakeredis with a worker thread in the web process.

Queues by purpose, served in this order by every worker: PERIODIC (the recovery sweep, the release of held
rows, the SLA check...), then PAGES (a critical SMS, any SMS about an incident: webapp.outbox.lane), then
ROUTING (a sender's stored events, routed: webapp.jobs.route_events), then DELIVERIES (email, digests, outgoing
webhooks, reports, test sends). So a page never waits behind bulk work, and pages already decided go out
before more are decided: in a storm a worker sends what routing made, then routes the events that arrived
meanwhile in one wave (the routing job takes the waiting backlog along), instead of alternating one event's
routing with its three SMS.
PERIODIC stays first: its jobs are few and short (the scheduler never stacks two copies of one), and they are
what makes pages (the SLA check, escalation, the release of held rows) and what puts back pages the queue lost
(the recovery sweep), so a page backlog must not hold them up either; ahead of pages they cost milliseconds.
One `Scheduler` loop per worker process enqueues the periodic jobs
and moves due retries onto their queues; a Redis lock lets only one of them act at a time, and a copy
of a periodic job is never enqueued while the previous one is still waiting or running.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import fakeredis
from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus, get_current_job
from rq.registry import ScheduledJobRegistry
from rq.results import Result
from rq.timeouts import TimerDeathPenalty

from webapp import logs, metrics
from webapp.extensions import db

log = logging.getLogger(__name__)

DELIVERIES = "deliveries"
PAGES = "pages"
PERIODIC = "periodic"
ROUTING = "routing"
QUEUE_NAMES = (PERIODIC, PAGES, ROUTING, DELIVERIES)  # in the order a worker serves them
ROUTING_REQUESTED = "opsrelay:routing-requested"  # set while a routing job waits: later senders' events ride on it
ROUTING_REQUEST_SECONDS = 10  # how long that note lasts if its job were lost (the recovery sweep is the floor)
DELIVER_JOB = "webapp.jobs.deliver"  # by path: the jobs import the services, which hand work to this queue
DELIVER_BATCH_JOB = "webapp.jobs.deliver_batch"  # several rows of one transaction: one claim, one job


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
    setting: str | None = None  # a config key that overrides every_seconds
    after_outage: bool = False  # also run at once, as func(after_outage=True), when the queue comes back


_in_worker = threading.local()


def in_worker() -> bool:
    """True on a worker's thread while it runs a job: a delivery job there hands its rows to the process's
    send pool (webapp.jobs.sendpool) and returns, so the worker takes the next job while they are sent."""
    return getattr(_in_worker, "on", False)


def pages_waiting() -> bool:
    """On a worker's thread, inside a job: does a job wait on the PAGES queue? (False elsewhere, or when
    Redis does not answer.) A bulk delivery job asks it so that it never holds the worker while a page waits."""
    job = get_current_job()
    if job is None:
        return False
    try:
        return bool(job.connection.llen(Queue.redis_queue_namespace_prefix + PAGES))
    except RedisError:
        return False


class AppWorker(SimpleWorker):
    """Runs each job in its own app context, with a fresh database session; when it stops (a signal, the
    end of a burst) it waits for the sends its jobs handed to the send pool."""

    flask_app: Flask | None = None

    def work(self, *args, **kwargs) -> bool:
        while True:
            pool = self.flask_app.extensions.get("opsrelay_sendpool")
            before = pool.finished if pool is not None else 0
            worked = super().work(*args, **kwargs)
            pool = self.flask_app.extensions.get("opsrelay_sendpool")
            if pool is None:
                return worked
            pool.drain()
            if not kwargs.get("burst") or pool.finished == before:
                return worked
            # a burst: what the last sends queued (a retry that is due, a follow-up) gets its own burst

    def perform_job(self, job: Job, queue: Queue, *args, **kwargs) -> bool:
        """Run the job with the request id it was queued with; one log line and the job metrics after it."""
        token = logs.bind_job_request_id((job.meta or {}).get("request_id"))
        started = time.perf_counter()
        finished = False
        _in_worker.on = True
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
            _in_worker.on = False


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

    def request_routing(self) -> bool:
        """True when a routing job should be queued: none waits already (noted until a job starts, or for
        ROUTING_REQUEST_SECONDS). A waiting job takes every unrouted event along when it runs (its backlog), so
        in a storm the senders' requests share one job instead of pushing one each. Raises RedisError when down."""
        return bool(self.connection.set(ROUTING_REQUESTED, 1, nx=True, ex=ROUTING_REQUEST_SECONDS))

    def routing_started(self) -> None:
        """A routing job is about to claim the unrouted events: events stored from now on need a job again."""
        try:
            self.connection.delete(ROUTING_REQUESTED)
        except RedisError:
            log.warning("queue unreachable: a routing job started without clearing %s", ROUTING_REQUESTED)

    def ping(self) -> bool:
        try:
            return bool(self.connection.ping())
        except RedisError:
            return False

    def worker(self, worker_class: type[AppWorker] = AppWorker) -> AppWorker:
        worker = worker_class([self.queues[name] for name in QUEUE_NAMES], connection=self.connection)
        worker.flask_app = self.app
        return worker

    def scheduler(self) -> Scheduler:
        return Scheduler(self)

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
        scheduler = self.scheduler()
        while not self._stop.is_set():
            try:
                scheduler.tick()  # periodic jobs and due retries onto their queues
                worker.work(burst=True, logging_level="WARNING")
            except Exception:
                log.exception("embedded worker loop failed; continuing")
            self._stop.wait(0.25)


class Scheduler:
    """Enqueues periodic jobs and due retries; safe to run in every worker process at once.

    `tick()` does one round and never raises (a Redis error is logged and remembered); `run()` loops
    until stopped. Only the holder of LOCK acts, so however many workers run, each periodic job is
    enqueued once per interval (the last run time lives in Redis, so a new holder keeps the rhythm).
    When the queue comes back after an outage -- this loop saw Redis errors, or Redis restarted empty
    (ALIVE is gone) -- the `after_outage` jobs (the recovery sweep) are enqueued at once.
    """

    LOCK = "opsrelay:scheduler:lock"
    LAST_RUN = "opsrelay:scheduler:last-run"  # hash: periodic name -> unix time it was last enqueued
    ALIVE = "opsrelay:scheduler:alive"  # set by the first scheduler; missing = Redis lost its data
    LOCK_SECONDS = 5  # a holder that died hands over within this long (the live one renews every round)

    def __init__(self, tasks: TaskQueue):
        self.tasks = tasks
        self.connection = tasks.connection
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.outage = False  # Redis failed since the last successful round
        self.errors = 0

    @property
    def interval(self) -> float:
        """Seconds between rounds."""
        return 1.0

    def every(self, periodic: Periodic) -> float:
        configured = self.tasks.app.config.get(periodic.setting) if periodic.setting else None
        return float(configured or periodic.every_seconds)

    def tick(self, now: float | None = None) -> bool:
        """One round; True if this process held the lock and acted. Never raises."""
        try:
            acted = self._round(time.time() if now is None else now)
        except Exception as exc:
            self.outage = self.outage or isinstance(exc, RedisError)
            self.errors += 1
            log.warning("scheduler round failed (%s: %s); retrying", type(exc).__name__, exc)
            return False
        self.errors = 0
        return acted

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; errors back off (up to 2 s), never end the loop."""
        while not stop.is_set():
            self.tick()
            stop.wait(min(self.interval * 2**self.errors, 2.0) if self.errors else self.interval)

    def release(self) -> None:
        try:
            if self.connection.get(self.LOCK) == self.token.encode():
                self.connection.delete(self.LOCK)
        except RedisError:
            pass

    def _hold_lock(self) -> bool:
        held = self.connection.set(self.LOCK, self.token, nx=True, ex=self.LOCK_SECONDS)
        if held:
            return True
        if self.connection.get(self.LOCK) == self.token.encode():
            self.connection.expire(self.LOCK, self.LOCK_SECONDS)
            return True
        return False

    def _round(self, now: float) -> bool:
        if not self._hold_lock():
            if self.outage:
                self.connection.ping()  # back: the holder (which saw the same outage) recovers
                self.outage = False
            return False
        came_back = self.outage or not self.connection.exists(self.ALIVE)
        self._enqueue_due_retries()
        last_run = {k.decode(): float(v) for k, v in self.connection.hgetall(self.LAST_RUN).items()}
        for periodic in self.tasks.periodic:
            if came_back and periodic.after_outage:
                log.warning("queue is back after an outage: running %s now", periodic.name)
                self._enqueue_periodic(periodic, now, after_outage=True)
            elif now - last_run.get(periodic.name, 0.0) >= self.every(periodic):
                self._enqueue_periodic(periodic, now)
        if came_back:
            self.connection.set(self.ALIVE, self.token)
        self.outage = False
        return True

    def _enqueue_periodic(self, periodic: Periodic, now: float, **kwargs) -> None:
        """Enqueue unless the previous copy is still waiting or running (no stacked runs after a stall)."""
        job_id = f"periodic-{periodic.name}"
        try:
            previous = Job.fetch(job_id, connection=self.connection)
        except Exception:  # NoSuchJobError, or a copy RQ cannot read: enqueue a fresh one
            previous = None
        if not kwargs and previous is not None and self._still_busy(previous, now, self.every(periodic)):
            return
        queue = self.tasks.queues[PERIODIC]
        queue.enqueue(periodic.func, job_id=job_id, kwargs=kwargs, result_ttl=600)
        self.connection.hset(self.LAST_RUN, periodic.name, now)

    def _still_busy(self, job: Job, now: float, every: float) -> bool:
        """Waiting on the periodic queue (a short list), or running and not so long that its worker must
        have died with it."""
        status = job.get_status(refresh=False)
        if status == JobStatus.QUEUED:
            return job.id in self.tasks.queues[PERIODIC].job_ids
        if status == JobStatus.STARTED:
            return job.started_at is not None and now - job.started_at.timestamp() < max(300.0, 10 * every)
        return False

    def _enqueue_due_retries(self) -> None:
        """What enqueue_at scheduled (retries) and is due now moves onto its queue."""
        for queue in self.tasks.queues.values():
            registry = ScheduledJobRegistry(queue=queue)
            job_ids = registry.get_jobs_to_schedule(int(time.time()))
            if not job_ids:
                continue
            jobs = Job.fetch_many(job_ids, connection=self.connection)
            with self.connection.pipeline() as pipeline:
                for job_id, job in zip(job_ids, jobs, strict=True):
                    if job is not None:
                        queue._enqueue_job(job, pipeline=pipeline)
                    registry.remove(job_id, pipeline=pipeline)
                pipeline.execute()


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
