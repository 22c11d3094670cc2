"""RQ entry points: ids in, services do the work, safe to run twice. PERIODIC_JOBS run on a timer.

Jobs own their transactions: a service flushes, the job commits, and what the transaction asked the
outbox for reaches the queue at that commit. The delivery job commits twice on purpose (the durable
claim before the provider call, the outcome after it): those commits live in webapp.jobs.claims.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from flask import current_app

from webapp import metrics, outbox
from webapp.extensions import db
from webapp.jobs import claims, sendpool
from webapp.models import utcnow
from webapp.queue import DELIVER_JOB, ROUTING, Periodic, get_queue
from webapp.services.delivery import attempts
from webapp.services.events import ingest
from webapp.services.inbound import follow_ups
from webapp.services.monitoring import handoffs, heartbeats, sms_budgets
from webapp.services.routing import digest
from webapp.services.tickets import sla

log = logging.getLogger(__name__)


def deliver(notification_id: int) -> str:
    """One notification: a batch of one (the outbox hands a single row so, several as deliver_batch)."""
    return deliver_batch([notification_id])


def deliver_batch(notification_ids: list[int]) -> str:
    """Claim the free ones of these rows in one statement and send them through the process's send pool
    (webapp.jobs.sendpool): concurrently, each outcome written as its call returns. Claimed no faster than
    the pool sends (pool.room), and a bulk job gives way to a waiting page."""
    pool = sendpool.get()
    pool.room(bulk=pool.lane_is_bulk())
    try:
        claimed = claims.claim_when_reachable(notification_ids)
    except claims.DatabaseUnreachable:
        at = attempts.retry_job_time(utcnow() + timedelta(seconds=claims.UNREACHABLE_RETRY_SECONDS))
        outbox.push(DELIVER_JOB, [(i,) for i in notification_ids], queue=outbox.current_lane(), at=at)
        return f"database unreachable: retry at {at.isoformat()}"
    if not claimed:
        return "skipped: already taken or done"
    outcomes = pool.send(claimed)
    if len(notification_ids) == 1:
        return outcomes[0]
    taken = len(notification_ids) - len(claimed)
    return "; ".join([f"{count} {outcome}" for outcome, count in Counter(outcomes).items()] + [f"{taken} skipped"])


def route_events(event_ids: list[int]) -> str:
    """A sender's stored events: attached to their incidents, routed, fanned out, escalation armed, the source's
    follow-up run -- one transaction, whose commit hands the deliveries to the queue. Safe to run twice: the
    events are claimed by a conditional UPDATE, so a second run (the recovery sweep's) finds nothing to do.
    Events stored while this job waited rode on it (webapp.outbox): it takes them along (the backlog), and
    when it took a whole backlog, it queues the next job for the rest."""
    get_queue(current_app).routing_started()
    results = ingest.route_stored(event_ids)
    for result in results:
        follow_ups.run(result)
    db.session.commit()
    routed = sum(len(result.events) for result in results)
    if routed >= ingest.BACKLOG:  # perhaps more wait than one job takes
        outbox.push(outbox.ROUTE_JOB, [([],)], queue=ROUTING)
    return f"routed {routed} of {len(event_ids)} events"


def recover_notifications(*, now: datetime | None = None, after_outage: bool = False) -> dict[str, int]:
    """Hand over again what the queue lost. The rows are committed first and marked queued only once their
    jobs are on the queue: with the queue down they stay as they are and the next sweep tries again. Events a
    sender's request stored whose routing job never came (`rerouted`) go to that job again, in batches.

    `after_outage` (the scheduler runs it so the moment Redis is back): every row waiting for a job is
    handed over at once, without the usual grace -- the jobs it had may be gone with Redis' memory. A
    row whose job survived gets two; the claim lets only one of them send it."""
    found = attempts.recover(now=now, after_outage=after_outage)
    db.session.commit()
    handed = outbox.push_deliveries(found.ids)  # each back on its lane
    later = {i: queue for queue, ids in outbox.lanes(i for i, _ in found.later).items() for i in ids}
    for notification_id, at in found.later:
        outbox.push(DELIVER_JOB, [(notification_id,)], queue=later[notification_id], at=attempts.retry_job_time(at))
    if handed:
        attempts.mark_queued(found.ids, now=now)
        db.session.commit()
    unrouted = ingest.unrouted(now=now, after_outage=after_outage)  # stored, but the routing job never came
    batches = [(unrouted[i : i + ingest.ROUTE_BATCH],) for i in range(0, len(unrouted), ingest.ROUTE_BATCH)]
    rerouted = len(unrouted) if batches and outbox.push(outbox.ROUTE_JOB, batches, queue=ROUTING) else 0
    db.session.rollback()  # the read's transaction: nothing written
    return {
        "requeued": len(found.ids) if handed else 0,
        "recovered_from_sending": found.from_sending,
        "rerouted": rerouted,
    }


def release_held_notifications() -> int:
    """Deferred rows that are due (quiet hours over, aggregation window closed, hour rolled over): sent as
    themselves or as one digest per user and channel. Safe to run twice at once: the claim is one UPDATE."""
    pending = digest.release()
    db.session.commit()
    return len(pending)


def check_sla() -> dict:
    """The SLA sweep: one transaction marks and routes; its notifications reach the queue at the commit."""
    result = sla.check_sla()
    db.session.commit()
    metrics.sla.labels(kind="warning").inc(len(result.warned))
    metrics.sla.labels(kind="breach").inc(len(result.breached))
    log.info("sla sweep: %s", result.summary())
    return {
        "summary": result.summary(),
        "warned": [f"OPS-{i}" for i in result.warned],
        "breached": [f"OPS-{i}" for i in result.breached],
        "escalated": result.escalated,
    }


def check_heartbeats() -> dict:
    """Heartbeats past their interval and grace: one alert each, routed and handed to the queue at the commit."""
    late = heartbeats.sweep()
    db.session.commit()
    if late:
        log.info("heartbeats late: %s", ", ".join(map(str, late)))
    return {"late": late}


def check_sms_budgets() -> dict:
    """Customers whose SMS spend reached their monthly budget: their people told, once a month."""
    told = sms_budgets.check()
    db.session.commit()
    if told:
        log.info("sms budgets reached: customers %s", ", ".join(map(str, told)))
    return {"told": told}


def notify_handoffs() -> dict:
    """Shifts that start now: the incoming person told, once per hand-off (a conditional UPDATE claims it)."""
    told = handoffs.sweep()
    db.session.commit()
    if told:
        log.info("on-call hand-offs announced: events %s", ", ".join(map(str, told)))
    return {"events": told}


PERIODIC_JOBS = [
    Periodic("recover-notifications", recover_notifications, 30, setting="RECOVERY_SWEEP_SECONDS", after_outage=True),
    Periodic("release-held-notifications", release_held_notifications, 15),
    Periodic("check-sla", check_sla, 60),
    Periodic("check-heartbeats", check_heartbeats, 30),
    Periodic("check-sms-budgets", check_sms_budgets, 60),
    Periodic("notify-handoffs", notify_handoffs, 60),
]
