"""The worker process's send pool: up to DELIVERY_CONCURRENCY provider calls in flight at once.

A provider answers in 100-300 ms; sending one notification at a time, a worker would spend a storm
waiting. So a delivery job claims its rows (durably, as always: webapp.jobs.claims) and hands them to
this pool, whose threads each send one row and write its outcome; the job returns at once and the
worker takes the next job while the calls run. When every slot is busy, the next hand-over waits for
one: at most DELIVERY_CONCURRENCY rows of a process are claimed and waiting or in flight. Pages come first:
bulk work (the DELIVERIES lane) may hold at most three quarters of the slots, so a page always finds one
soon, and a bulk row waits to start while a page of its process is in flight.

Every guarantee of the claim holds: the lease keeper renews a row's lease from its claim until its
outcome is written; a lost database connection after the provider answered rewrites the outcome
(claims.finish); a transient error schedules the retry; a process that dies mid-send leaves rows in
`sending` whose leases lapse, and the recovery sweep re-sends them marked "possibly duplicated". A
worker stopping (SIGTERM, the end of a burst) waits for its pool to finish: AppWorker.work calls drain().

Outside a worker (a test, `flask` commands, RQ_INLINE; webapp.queue.in_worker() is False), the job waits for its
rows' outcomes, and a batch of one is sent on the job's own thread, exactly as before the pool.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask, current_app

from webapp import outbox
from webapp.extensions import db
from webapp.jobs import claims
from webapp.models import Notification
from webapp.queue import DELIVERIES, in_worker
from webapp.services.delivery import attempts

log = logging.getLogger(__name__)


class SendPool:
    def __init__(self, app: Flask, size: int):
        self.app = app
        self.size = max(1, size)
        self._slots = threading.BoundedSemaphore(self.size)
        self._bulk_slots = threading.BoundedSemaphore(max(1, self.size - self.size // 4))
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="opsrelay-send")
        self._lock = threading.Condition()
        self._in_flight = 0
        self._pages_in_flight = 0
        self.finished = 0  # rows whose send ended (any outcome), for drain()

    def send(self, notifications: list[Notification]) -> list[str]:
        """Send claimed rows (leases held from here on); their outcomes, or "handed over" when detached."""
        keeper = claims.lease_keeper()
        for notification in notifications:
            keeper.hold(notification.id, notification.claimed_by or claims.worker_name())
        if len(notifications) == 1 and not in_worker():
            return [self._send_here(notifications[0])]
        claims.hand_over(notifications)
        bulk = outbox.current_lane() == DELIVERIES
        futures = []
        try:
            for notification in notifications:
                futures.append(self._submit(notification, bulk=bulk))
        except BaseException:  # not handed over (the process is ending): their leases lapse, the sweep sends them
            for notification in notifications[len(futures) :]:
                keeper.drop(notification.id)
            raise
        if in_worker():
            return ["handed to the send pool"] * len(futures)
        outcomes = [future.result() for future in futures]
        for notification in notifications:  # back to the caller's session, as a claim leaves them
            db.session.add(notification)
        return outcomes

    def _submit(self, notification: Notification, *, bulk: bool) -> Future:
        if bulk:
            with self._lock:
                self._lock.wait_for(lambda: self._pages_in_flight == 0)
            self._bulk_slots.acquire()
        self._slots.acquire()  # every slot busy: wait for one (the lease keeper renews this row meanwhile)
        with self._lock:
            self._in_flight += 1
            self._pages_in_flight += 0 if bulk else 1
        context = contextvars.copy_context()  # the job's request id and job id, for the log lines
        try:
            return self._executor.submit(context.run, self._run, notification, bulk)
        except BaseException:
            self._done(bulk)
            raise

    def _run(self, notification: Notification, bulk: bool) -> str:
        try:
            with self.app.app_context():
                try:
                    claims.adopt(notification)
                    return self._send_here(notification)
                finally:
                    db.session.remove()
        except Exception:  # a bug, not a send error: the row stays `sending`; its lease lapses; the sweep
            log.exception("notification %s: the send pool's thread failed", notification.id)
            return "error"
        finally:
            self._done(bulk)

    @staticmethod
    def _send_here(notification: Notification) -> str:
        keeper = claims.lease_keeper()
        try:
            retry_at = attempts.send(notification)
        finally:
            keeper.drop(notification.id)
        outcome = str(notification.status)
        claims.finish(notification)  # the commit hands a retry to the queue (outbox)
        return f"retry at {retry_at.isoformat()}" if retry_at is not None else outcome

    def _done(self, bulk: bool) -> None:
        self._slots.release()
        if bulk:
            self._bulk_slots.release()
        with self._lock:
            self._in_flight -= 1
            self._pages_in_flight -= 0 if bulk else 1
            self.finished += 1
            self._lock.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until no send is in flight; False if `timeout` passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: self._in_flight == 0, timeout)


def get() -> SendPool:
    """This process's pool for the current app (built on first use)."""
    app = current_app._get_current_object()
    pool = app.extensions.get("opsrelay_sendpool")
    if pool is None:
        pool = app.extensions["opsrelay_sendpool"] = SendPool(app, app.config["DELIVERY_CONCURRENCY"])
    return pool


def drain(app: Flask, timeout: float | None = None) -> bool:
    """Wait for the app's pool (if it has one) to finish what it holds."""
    pool = app.extensions.get("opsrelay_sendpool")
    return pool.drain(timeout) if pool is not None else True
