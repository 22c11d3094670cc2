"""Storm: 2,000 critical alerts in 30 s, 3 admins each, through gunicorn (2 workers) and two worker.py
processes, to a Twilio that takes 150 ms to answer each message (as a real provider does).

Starts its own Redis and PostgreSQL cluster (benchmarks/stack.py), never the shared ones. The Twilio
stand-in runs in its own process and answers every message after --latency seconds. The admins' storm
guard is off (as in benchmarks/faults.py): every page must go out, this measures the engine.

Pacing: the app sends through a Messaging Service (TWILIO_MESSAGING_SERVICE_SID) whose rate is set to
--rate messages/s (TWILIO_MESSAGING_SERVICE_MESSAGES_PER_SECOND: a service's rate is the sum of its
senders', e.g. 10 short codes or a few hundred long codes), and the stand-in enforces that same rate
per sender, answering 429 / 20429 beyond it: the run counts those (aim: none).

Prints p50/p99 of alert accepted (the webhook answered 200) -> provider accepted (the stand-in took
the message), and ends with
`ratio: <(last SMS accepted - first alert sent) / (last alert sent - first alert sent)>` (aim <= 1.5;
1.0 would be every SMS out the moment its alert arrived).

    .venv/bin/python benchmarks/storm.py [--alerts 2000] [--seconds 30] [--admins 3] [--latency 0.15]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from benchmarks.stack import Stack, TwilioProcess, send_burst  # noqa: E402
from tests.conftest import twilio_settings  # noqa: E402
from tests.fault_services import wait_for  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Event, Notification, NotificationStatus  # noqa: E402

S = NotificationStatus
SERVICE_SID = "MG" + "5" * 32


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def stage_times() -> dict[str, list[float]]:
    """Per SMS: alert stored -> routed (its row created), routed -> claimed, claimed -> sent (the database's
    timestamps; each stage's wait shows where a backlog formed)."""
    rows = db.session.execute(
        sa.select(Event.created_at, Notification.created_at, Notification.claimed_at, Notification.sent_at)
        .join(Event, Event.id == Notification.event_id)
        .where(Notification.status == S.SENT)
    ).all()
    pairs = {"stored -> routed": (0, 1), "routed -> claimed": (1, 2), "claimed -> provider accepted": (2, 3)}
    return {
        stage: [(row[b] - row[a]).total_seconds() for row in rows if row[a] and row[b]]
        for stage, (a, b) in pairs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--admins", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds Twilio takes to answer a message")
    parser.add_argument("--rate", type=float, default=500.0, help="the Messaging Service's messages per second")
    parser.add_argument("--settle-timeout", type=float, default=600.0)
    args = parser.parse_args()

    twilio = TwilioProcess(answer_delay=args.latency, per_sender_per_second=args.rate)
    env = {
        **twilio_settings(twilio.start()),
        "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID,
        "TWILIO_MESSAGING_SERVICE_MESSAGES_PER_SECOND": str(args.rate),
    }
    phones = [f"+1415555{i:04d}" for i in range(args.admins)]
    expected = args.alerts * args.admins
    stack = Stack(env, phones)
    answers: list[int] = []
    try:
        tag = f"storm-{int(time.time())}"
        times = send_burst(stack.alertmanager_url, tag, args.alerts, args.seconds, answers)

        def settled() -> bool:
            with stack.app.app_context():
                counts = dict(
                    db.session.execute(
                        sa.select(Notification.status, sa.func.count()).group_by(Notification.status)
                    ).all()
                )
                db.session.remove()
            return sum(counts.values()) >= expected and counts.get(S.SENT, 0) + counts.get(S.FAILED, 0) >= expected

        done = wait_for(settled, args.settle_timeout, pause=0.5)
        with stack.app.app_context():
            statuses = Counter(
                dict(
                    db.session.execute(
                        sa.select(Notification.status, sa.func.count()).group_by(Notification.status)
                    ).all()
                )
            )
            stages = stage_times()
            db.session.remove()
    finally:
        stack.close()
        log = twilio.stop()

    by_alert: dict[int, list[float]] = {}
    for form, at in zip(log.received, log.times, strict=True):
        if found := re.search(rf"{tag}-(\d+)\b", form["Body"]):  # the alert's name, in its SMS
            by_alert.setdefault(int(found[1]), []).append(at)
    latencies = [at - times[n][1] for n, ats in by_alert.items() if n in times for at in ats]
    received = sum(len(ats) for ats in by_alert.values())
    duplicated = sum(max(0, len(ats) - args.admins) for ats in by_alert.values())
    if not done or len(times) < args.alerts or received < expected:
        print(
            f"incomplete run: {len(times)}/{args.alerts} alerts accepted, {received}/{expected} SMS received, "
            f"rows {dict((str(k), v) for k, v in statuses.items())}, answers {dict(Counter(answers))}",
            file=sys.stderr,
        )
        return 1
    first_sent = min(sent for sent, _ in times.values())
    last_sent = max(sent for sent, _ in times.values())
    last_sms = max(at for ats in by_alert.values() for at in ats)
    print(
        f"{args.alerts} critical alerts in {last_sent - first_sent:.1f} s x {args.admins} admins = {expected} SMS; "
        f"gunicorn 2 workers, 2 worker.py (send pool of DELIVERY_CONCURRENCY each); Twilio answers after "
        f"{args.latency * 1000:.0f} ms; Messaging Service paced at {args.rate:.0f}/s"
    )
    print(
        f"received {received} SMS ({duplicated} duplicated), 429s from the stand-in: {log.rate_limited}, "
        f"rows {dict((str(k), v) for k, v in statuses.items())}, webhook answers {dict(Counter(answers))}"
    )
    print(
        f"alert accepted -> provider accepted: p50 {statistics.median(latencies):.2f} s, "
        f"p99 {percentile(latencies, 0.99):.2f} s, max {max(latencies):.2f} s"
    )
    print(f"last SMS {last_sms - last_sent:.1f} s after the last alert was sent")
    per_second = Counter(int(at - first_sent) for ats in by_alert.values() for at in ats)
    print(
        "provider accepted per second (from the first alert): "
        + " ".join(str(per_second.get(second, 0)) for second in range(int(last_sms - first_sent) + 1))
    )
    for stage, seconds in stages.items():  # where the time went: which stage the backlog waited in
        print(f"{stage}: p50 {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s")
    print(f"ratio: {(last_sms - first_sent) / (last_sent - first_sent):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
