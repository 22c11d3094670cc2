"""Faults: replay an alert burst through gunicorn (2 workers) and two worker.py processes, inject one fault
mid-burst, and measure what reached the (loopback) Twilio.

Starts its own Redis and its own throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir, spare ports),
whatever DATABASE_URL / REDIS_URL say, and never touches the shared ones. Faults, one round each, after a
round without a fault (the baseline):

    redis-stop      Redis killed (no persistence: every job in it is lost) for --outage seconds, then back
    worker-kill     one worker SIGKILLed mid-send; a replacement starts (as a process supervisor does)
    postgres        the PostgreSQL cluster restarted (immediate stop, --outage seconds down)
    twilio-errors   Twilio answers 429 (Retry-After) / 500 to everything for --outage seconds
    sigterm         one worker SIGTERMed mid-job (a deploy); a replacement starts

Per round it prints alerts sent / events stored / SMS expected / received / lost / duplicated / marked
(duplicates whose row says "possibly duplicated") / stuck (not terminal at the end), and the seconds from
the fault's end to the last delivery. The last line is
`ratio: <worst recovery seconds / sweep interval seconds>` (aim: <= 2, with zero lost and zero unmarked
duplicates).

    .venv/bin/python benchmarks/faults.py [--alerts 300] [--seconds 10] [--sweep 10] [--outage 5]
    .venv/bin/python benchmarks/faults.py --alerts 2000 --seconds 30 --sweep 30    # the issue's burst
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from benchmarks.stack import Stack, send_burst  # noqa: E402
from tests.conftest import TWILIO_SID, TWILIO_TOKEN, twilio_settings  # noqa: E402
from tests.fault_services import wait_for  # noqa: E402
from tests.twilio_fake import FakeTwilio  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Notification, NotificationStatus  # noqa: E402

S = NotificationStatus
TERMINAL = (S.SENT, S.DELIVERED, S.FAILED, S.SUPPRESSED)
PHONE = "+14155550101"
FAULTS = ("none", "redis-stop", "worker-kill", "postgres", "twilio-errors", "sigterm")


class Bench(Stack):
    def __init__(self, args):
        self.args = args
        self.twilio = FakeTwilio(TWILIO_SID, TWILIO_TOKEN).start()  # in this process: the faults script it
        env = {
            **twilio_settings(self.twilio.base_url),
            "RECOVERY_SWEEP_SECONDS": str(args.sweep),
            "DELIVERY_LEASE_SECONDS": str(args.lease),
            "DELIVERY_BACKOFF_SECONDS": "1",
            "DELIVERY_MAX_ATTEMPTS": "10",
        }
        super().__init__(env, [PHONE])

    def close(self) -> None:
        super().close()
        self.twilio.stop()

    # --- one round ------------------------------------------------------------------------

    def send_burst(self, tag: str, answers: list) -> None:
        """`alerts` alerts spread over `seconds`, by 8 senders; 503s are retried as Alertmanager would."""
        send_burst(self.alertmanager_url, tag, self.args.alerts, self.args.seconds, answers)

    def inject(self, fault: str) -> float:
        """Inject the fault; return the time (time.time()) it ended."""
        outage = self.args.outage
        if fault == "redis-stop":
            self.redis.stop()
            time.sleep(outage)
            self.redis.start()
        elif fault == "postgres":
            self.cluster.restart(pause=outage)
        elif fault == "twilio-errors":
            for n in range(int(outage)):
                self.twilio.failing = (20429, {"Retry-After": "2"}) if n % 2 == 0 else (20500, {})
                time.sleep(1)
            self.twilio.failing = None
        elif fault in ("worker-kill", "sigterm"):
            victim = self._busy_worker()
            victim.send_signal(signal.SIGKILL if fault == "worker-kill" else signal.SIGTERM)
            victim.wait(60)
            self.workers.processes.remove(victim)
            self.workers.start_one()  # the process supervisor's restart
        return time.time()

    def _busy_worker(self):
        with self.app.app_context():
            holder = db.session.scalar(
                sa.select(Notification.claimed_by).where(Notification.status == S.SENDING).limit(1)
            )
            db.session.remove()
        for process in self.workers.alive():
            if holder and holder.endswith(f":{process.pid}"):
                return process
        return self.workers.alive()[0]

    def round(self, fault: str) -> dict:
        tag = f"{fault}-{int(time.time())}"
        with self.app.app_context():
            first_id = (db.session.scalar(sa.select(sa.func.max(Notification.id))) or 0) + 1
            db.session.remove()
        received_before = len(self.twilio.received)
        answers: list[int] = []
        burst = threading.Thread(target=self.send_burst, args=(tag, answers))
        started = time.time()
        burst.start()
        time.sleep(self.args.seconds / 3)
        fault_end = self.inject(fault) if fault != "none" else time.time()
        burst.join()
        settled = self._wait_settled(first_id)
        with self.app.app_context():
            rows = db.session.execute(
                sa.select(Notification.status, Notification.reason, Notification.body).where(
                    Notification.id >= first_id
                )
            ).all()
            events = db.session.scalar(
                sa.text("SELECT count(*) FROM event WHERE dedup_key LIKE :tag"), {"tag": f"{tag}-%"}
            )
            db.session.remove()
        sent = [
            (m["Body"], t)
            for m, t in zip(
                self.twilio.received[received_before:], self.twilio.received_times[received_before:], strict=False
            )
            if tag in m["Body"]
        ]
        by_body = Counter(body for body, _ in sent)
        expected = {f"{tag}-{n}" for n in range(self.args.alerts)}
        delivered = {name for name in expected if any(f"\n{name}\n" in body for body in by_body)}
        marked_bodies = {body for _, reason, body in rows if (reason or "").startswith("possibly duplicated")}
        duplicated = [body for body, count in by_body.items() if count > 1]
        last = max((t for _, t in sent), default=fault_end)
        return {
            "fault": fault,
            "alerts": self.args.alerts,
            "answers": dict(Counter(answers)),
            "events": events,
            "expected": self.args.alerts,
            "received": len(sent),
            "lost": len(expected - delivered),
            "duplicated": sum(by_body[body] - 1 for body in duplicated),
            "marked": len(marked_bodies),
            "unmarked": sum(by_body[body] - 1 for body in duplicated if body not in marked_bodies),
            "stuck": sum(1 for status, _, _ in rows if status not in TERMINAL) if not settled else 0,
            "recovery": max(0.0, last - fault_end),
            "took": last - started,
        }

    def _wait_settled(self, first_id: int) -> bool:
        def settled() -> bool:
            with self.app.app_context():
                counts = dict(
                    db.session.execute(
                        sa.select(Notification.status, sa.func.count())
                        .where(Notification.id >= first_id)
                        .group_by(Notification.status)
                    ).all()
                )
                db.session.remove()
            total = sum(counts.values())
            return total >= self.args.alerts and sum(counts.get(s, 0) for s in TERMINAL) == total

        try:
            return wait_for(settled, self.args.settle_timeout, pause=0.5)
        except sa.exc.OperationalError:
            return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each burst")
    parser.add_argument("--sweep", type=float, default=10.0, help="recovery sweep interval (seconds)")
    parser.add_argument("--lease", type=float, default=10.0, help="delivery lease (seconds)")
    parser.add_argument("--outage", type=float, default=5.0, help="how long Redis / PostgreSQL / Twilio are away")
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--faults", default=",".join(FAULTS))
    args = parser.parse_args()
    bench = Bench(args)
    results = []
    try:
        for fault in args.faults.split(","):
            result = bench.round(fault)
            results.append(result)
            print(
                f"{result['fault']:<14} alerts {result['alerts']:>5}  events {result['events']:>5}  "
                f"sms expected {result['expected']:>5}  received {result['received']:>5}  lost {result['lost']:>3}  "
                f"duplicated {result['duplicated']:>3}  marked {result['marked']:>3}  "
                f"unmarked {result['unmarked']:>3}  stuck {result['stuck']:>3}  "
                f"recovered in {result['recovery']:6.1f} s  (burst to last sms {result['took']:.1f} s; "
                f"answers {result['answers']})",
                flush=True,
            )
    finally:
        bench.close()
    worst = max((r["recovery"] for r in results if r["fault"] != "none"), default=0.0)
    failures = sum(r["lost"] + r["unmarked"] + r["stuck"] for r in results)
    print(f"sweep interval {args.sweep:.0f} s; worst recovery {worst:.1f} s; lost+unmarked+stuck {failures}")
    print(f"ratio: {worst / args.sweep:.2f}")


if __name__ == "__main__":
    main()
