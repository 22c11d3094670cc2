"""The outbox: jobs a transaction asks for reach the queue after it commits, and are dropped if it does not.

A service that leaves work for a worker (a Notification to deliver) calls `outbox.deliver(ids)` inside its
caller's transaction; it never commits and never talks to the queue. When the session's outermost
transaction commits, the `after_commit` hook below hands everything that transaction asked for to RQ, one
round trip per job; when it rolls back (or the session closes without committing), the requests are dropped
with it. So no caller has to remember a flush after its commit, and no job can run before the rows it
reads are visible to the worker.

If the queue cannot be reached at commit, nothing is lost: the rows are committed (pending or queued; a
sender's events unrouted) and the recovery sweep (`jobs.recover_notifications`) hands them over again.

The rows of one transaction and lane go in batches (`deliver_batch(ids)`, one claim for all), a single row
as `deliver(id)`. Each delivery job goes on its lane (`lane`): a page (an SMS of a critical event or of an
incident's event) on PAGES, everything else on DELIVERIES. `deliver` finds the lanes of the rows itself (one
SELECT) unless its caller already knows them (routing does), so the recovery sweep and retries put a row back
on its own lane.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from flask import current_app, has_app_context
from redis.exceptions import RedisError
from rq import get_current_job
from sqlalchemy import event
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.models import Channel, Event, Notification, Severity
from webapp.queue import DELIVER_BATCH_JOB, DELIVER_JOB, DELIVERIES, PAGES, QUEUE_NAMES, ROUTING, get_queue

log = logging.getLogger(__name__)

ROUTE_JOB = "webapp.jobs.route_events"  # by path, as DELIVER_JOB: a sender's events, routed after its commit
KEY = "opsrelay_outbox"  # session.info: {(job path, queue name, run at or None): [argument tuples]}
BATCH = 16  # rows of one transaction and lane per delivery job (claimed in one statement, sent together)


def add(
    job: str, arg_lists: Iterable[tuple], *, queue: str, at: datetime | None = None, session: Session | None = None
) -> None:
    """Ask for `job` to run once per argument tuple after the current transaction commits (at `at`, if given)."""
    arg_lists = list(arg_lists)
    if not arg_lists:
        return
    session = session if session is not None else db.session()
    session.info.setdefault(KEY, {}).setdefault((job, queue, at), []).extend(arg_lists)


def lane(channel: str, severity: str | None, incident_id: int | None) -> str:
    """The queue a notification's delivery job goes on: PAGES for a page (a phone call; an SMS of a critical event,
    or of any event of an incident: its pages, escalation steps and notices), DELIVERIES for the rest (email,
    digests -- storm summaries included --, outgoing webhooks, reports, test sends and verification codes)."""
    if channel == Channel.VOICE:
        return PAGES
    if channel == Channel.SMS and (severity == Severity.CRITICAL or incident_id is not None):
        return PAGES
    return DELIVERIES


def lanes(notification_ids: Iterable[int], *, session: Session | None = None) -> dict[str, list[int]]:
    """{queue: ids} for these notifications, read in one statement."""
    ids = sorted(set(notification_ids))
    if not ids:
        return {}
    session = session if session is not None else db.session()
    found: dict[str, list[int]] = {}
    for start in range(0, len(ids), 1000):
        for notification_id, channel, severity, incident_id in session.execute(
            sa.select(Notification.id, Notification.channel, Event.severity, Event.incident_id)
            .outerjoin(Event, Event.id == Notification.event_id)
            .where(Notification.id.in_(ids[start : start + 1000]))
        ):
            found.setdefault(lane(channel, severity, incident_id), []).append(notification_id)
    return found


def deliver(
    notification_ids: Iterable[int],
    *,
    at: datetime | None = None,
    session: Session | None = None,
    queue: str | None = None,
) -> None:
    """Deliver these notifications once the transaction that created (or re-opened) them commits, each on its
    lane (`queue`, when the caller knows it; else read from the rows)."""
    ids = list(notification_ids)
    if not ids:
        return
    by_lane = {queue: ids} if queue is not None else lanes(ids, session=session)
    for name, lane_ids in by_lane.items():
        for job, arg_lists in delivery_jobs(lane_ids).items():
            add(job, arg_lists, queue=name, at=at, session=session)


def delivery_jobs(notification_ids: list[int]) -> dict[str, list[tuple]]:
    """The jobs that deliver these rows: `deliver(id)` for one, `deliver_batch(ids)` for up to BATCH."""
    if len(notification_ids) == 1:
        return {DELIVER_JOB: [(notification_ids[0],)]}
    batches = [(notification_ids[i : i + BATCH],) for i in range(0, len(notification_ids), BATCH)]
    return {DELIVER_BATCH_JOB: batches}


def route(event_ids: list[int], *, session: Session | None = None) -> None:
    """Route these stored events (services.events.ingest) in one job once the transaction commits. On ROUTING:
    after the pages already decided (webapp.queue), before bulk work."""
    add(ROUTE_JOB, [(list(event_ids),)], queue=ROUTING, session=session)


def push_deliveries(notification_ids: Iterable[int], *, at: datetime | None = None) -> bool:
    """`push` of delivery jobs now (outside a transaction's outbox: the sweep), each on its lane."""
    handed = True
    for name, lane_ids in lanes(notification_ids).items():
        for job, arg_lists in delivery_jobs(lane_ids).items():
            handed = push(job, arg_lists, queue=name, at=at) and handed
    return handed


def current_lane() -> str:
    """The lane of the delivery job running now (a retry goes back where it came from), DELIVERIES outside one."""
    job = get_current_job()
    return job.origin if job is not None and job.origin in QUEUE_NAMES else DELIVERIES


def waiting(session: Session | None = None) -> list[tuple[str, tuple]]:
    """What the current transaction will hand over at commit: (job, args), in order."""
    session = session if session is not None else db.session()
    return [(job, args) for (job, _queue, _at), lists in session.info.get(KEY, {}).items() for args in lists]


def push(job: str, arg_lists: list[tuple], *, queue: str, at: datetime | None = None) -> bool:
    """Put the jobs on the queue (in one round trip unless scheduled); False (logged) if it cannot be reached."""
    if not arg_lists:
        return False
    tasks = get_queue(current_app)
    try:
        if at is None:
            tasks.enqueue_many(job, arg_lists, queue=queue)
        else:
            for args in arg_lists:
                tasks.enqueue_at(at, job, *args, queue=queue)
    except RedisError as exc:
        log.warning("queue unreachable (%s): %d %s jobs wait in the database", type(exc).__name__, len(arg_lists), job)
        return False
    return True


@event.listens_for(Session, "after_commit")
def _hand_over(session: Session) -> None:
    """The outermost transaction committed: its rows are visible, so its jobs may run now."""
    requested = session.info.pop(KEY, None)
    if not requested or not has_app_context():
        return
    for (job, queue, at), arg_lists in requested.items():
        if job == ROUTE_JOB and at is None:
            _push_routing(arg_lists, queue=queue)
        else:
            push(job, arg_lists, queue=queue, at=at)


def _push_routing(arg_lists: list[tuple], *, queue: str) -> None:
    """A sender's events were stored: queue a routing job, unless one waits already (it will take these
    events along: webapp.queue.TaskQueue.request_routing). The recovery sweep pushes its own, always."""
    tasks = get_queue(current_app)
    try:
        if not tasks.request_routing():
            return
    except RedisError as exc:
        log.warning(
            "queue unreachable (%s): the events wait in the database for the recovery sweep", type(exc).__name__
        )
        return
    if not push(ROUTE_JOB, arg_lists, queue=queue):
        tasks.routing_started()  # no job came of the note: the next sender's request tries again


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction) -> None:
    """A transaction that ended without committing (rollback, close) takes its requests with it."""
    if transaction.parent is None:
        session.info.pop(KEY, None)
