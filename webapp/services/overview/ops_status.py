"""Is anything working the queue, and how long has the oldest job waited?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from webapp.models import utcnow
from webapp.queue import TaskQueue

HEARTBEAT_STALE = timedelta(minutes=2)


@dataclass(frozen=True)
class QueueHealth:
    reachable: bool
    embedded: bool
    workers: int  # workers with a fresh heartbeat (or the embedded thread)
    queued_jobs: int
    oldest_job_age: timedelta | None

    @property
    def worker_alive(self) -> bool:
        return self.workers > 0


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _enqueued_at(queue: TaskQueue, job_id: str) -> datetime | None:
    try:
        return _aware(Job.fetch(job_id, connection=queue.connection).enqueued_at)
    except NoSuchJobError:  # taken and finished between the two reads
        return None


@dataclass(frozen=True)
class QueueLoad:
    name: str
    waiting: int
    oldest_job_age: timedelta | None
    failed: int


def loads(queue: TaskQueue, *, now: datetime | None = None) -> list[QueueLoad]:
    """Each queue's waiting jobs, the age of its oldest and its failed jobs; raises RedisError when down."""
    now = now or utcnow()
    found = []
    for name, rq_queue in queue.queues.items():
        head = rq_queue.get_job_ids(0, 1)
        enqueued = _enqueued_at(queue, head[0]) if head else None
        found.append(
            QueueLoad(name, rq_queue.count, (now - enqueued) if enqueued else None, rq_queue.failed_job_registry.count)
        )
    return found


def live_workers(queue: TaskQueue, *, now: datetime | None = None) -> int:
    """Workers with a fresh heartbeat (or the embedded thread); raises RedisError when down."""
    now = now or utcnow()
    if queue.embedded:
        return 1 if queue.embedded_worker_alive else 0
    return sum(
        1
        for w in Worker.all(connection=queue.connection)
        if (beat := _aware(w.last_heartbeat)) is not None and now - beat < HEARTBEAT_STALE
    )


def health(queue: TaskQueue, *, now: datetime | None = None) -> QueueHealth:
    now = now or utcnow()
    try:
        queue.connection.ping()
        workers = live_workers(queue, now=now)
        found = loads(queue, now=now)
    except (RedisError, OSError):
        return QueueHealth(False, queue.embedded, 0, 0, None)
    ages = [load.oldest_job_age for load in found if load.oldest_job_age is not None]
    return QueueHealth(True, queue.embedded, workers, sum(load.waiting for load in found), max(ages, default=None))


def describe_age(age: timedelta | None) -> str:
    if age is None:
        return "none waiting"
    seconds = int(age.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
