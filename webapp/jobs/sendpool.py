"""The worker process's send pool: up to DELIVERY_CONCURRENCY provider calls in flight at once.

A provider answers in 100-300 ms; sending one notification at a time, a worker would spend a storm
waiting. So a delivery job claims its rows (durably, as always: webapp.jobs.claims) and hands them to
this pool, whose threads each send one row and write its outcome; the job returns at once and the
worker takes the next job while the calls run.

Pages come first, and the worker's main thread is never held by bulk work while a page waits:
- inside the pool, rows wait in two lines, pages and bulk (the DELIVERIES lane); a free thread takes a page
  first; a bulk row starts only while no page of the process is waiting or in flight, and bulk holds at
  most half the threads, so a page finds a thread at once and shares the process with fewer busy bulk
  sends (each email's TLS and each webhook's request compete with the page for the interpreter: with three
  quarters for bulk, a page behind 10,000 of them took ~3x its time on an empty queue, with half ~1.1-2x);
- before a job claims its rows, room(): it waits while a whole batch of its kind already waits here
  (back-pressure: rows are not claimed faster than this process sends them, so another worker takes
  them), but a bulk job waits only while no page job waits on the queue -- then it goes ahead (one more
  batch waits in the pool's bulk line) and the worker takes the page next.

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
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import NamedTuple

from flask import Flask, current_app

from webapp import outbox
from webapp.extensions import db
from webapp.jobs import claims
from webapp.models import Notification
from webapp.queue import DELIVERIES, in_worker, pages_waiting
from webapp.services.delivery import attempts

log = logging.getLogger(__name__)
GIVE_WAY_CHECK_SECONDS = 0.005  # how often a bulk job waiting for room looks for a waiting page job


class _Row(NamedTuple):
    notification: Notification
    outcome: Future
    context: contextvars.Context  # the job's request id and job id, for the log lines


class SendPool:
    def __init__(self, app: Flask, size: int):
        self.app = app
        self.size = max(1, size)
        self.bulk_threads = max(1, self.size // 2)
        self._lock = threading.Condition()
        self._waiting: dict[bool, deque[_Row]] = {False: deque(), True: deque()}  # by bulk
        self._running: dict[bool, int] = {False: 0, True: 0}
        self._threads: list[threading.Thread] = []
        self.finished = 0  # rows whose send ended (any outcome), for drain()

    @staticmethod
    def lane_is_bulk() -> bool:
        return outbox.current_lane() == DELIVERIES

    def room(self, *, bulk: bool, page_waiting: Callable[[], bool] = pages_waiting) -> None:
        """Before a job claims rows: wait while a batch's worth of its kind already waits in this pool. A bulk
        job stops waiting as soon as a page job waits on the queue (its worker must take the page next)."""
        if not in_worker():
            return
        while True:
            with self._lock:
                if self._lock.wait_for(
                    lambda: len(self._waiting[bulk]) < self.size, GIVE_WAY_CHECK_SECONDS if bulk else None
                ):
                    return
            if page_waiting():
                return

    def send(self, notifications: list[Notification]) -> list[str]:
        """Send claimed rows (leases held from here on); their outcomes, or "handed over" when detached."""
        keeper = claims.lease_keeper()
        for notification in notifications:
            keeper.hold(notification.id, notification.claimed_by or claims.worker_name())
        if len(notifications) == 1 and not in_worker():
            return [self._send_here(notifications[0])]
        claims.hand_over(notifications)
        bulk = self.lane_is_bulk()
        rows = [_Row(notification, Future(), contextvars.copy_context()) for notification in notifications]
        with self._lock:
            self._start_threads()
            self._waiting[bulk].extend(rows)
            self._lock.notify_all()
        if in_worker():
            return ["handed to the send pool"] * len(rows)
        outcomes = [row.outcome.result() for row in rows]
        for notification in notifications:  # back to the caller's session, as a claim leaves them
            db.session.add(notification)
        return outcomes

    def _start_threads(self) -> None:
        """Under the lock: the pool's threads, started on first use (and again after a fork)."""
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        for number in range(len(self._threads), self.size):
            thread = threading.Thread(target=self._serve, name=f"opsrelay-send-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _take(self) -> tuple[bool, _Row] | None:
        """Under the lock: the next row a free thread may start -- a page first; bulk while no page waits or
        is in flight and fewer than bulk_threads bulk rows run."""
        if self._waiting[False]:
            return False, self._waiting[False].popleft()
        if self._waiting[True] and not self._running[False] and self._running[True] < self.bulk_threads:
            return True, self._waiting[True].popleft()
        return None

    def _serve(self) -> None:
        while True:
            with self._lock:
                while (taken := self._take()) is None:
                    self._lock.wait()
                bulk, row = taken
                self._running[bulk] += 1
            try:
                row.outcome.set_result(row.context.run(self._run, row.notification))
            finally:
                with self._lock:
                    self._running[bulk] -= 1
                    self.finished += 1
                    self._lock.notify_all()

    def _run(self, notification: Notification) -> str:
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

    def _busy(self) -> bool:
        return any(self._waiting.values()) or any(self._running.values())

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing waits or is in flight; False if `timeout` passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._busy(), timeout)


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
