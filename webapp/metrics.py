"""Every metric OpsRelay exports at /metrics, defined once: instrumenting is `metrics.<name>.labels(...).inc()`.

Counters and histograms are recorded where things happen (webhooks, deliveries, callbacks, jobs, logins);
what the database or the queue knows (queue depth, oldest job, notifications by status) is read at scrape
time by `render()`.

Several processes (gunicorn's workers, each worker.py): set `PROMETHEUS_MULTIPROC_DIR` to an empty directory
shared by them all before they start. prometheus-client then keeps each process's values in files there, and a
scrape of any web worker adds them up (`MultiProcessCollector`); gunicorn's `child_exit` hook
(webapp/gunicorn_conf.py) marks a dead worker's files. Without it (one process: `flask dev`, the tests) the
values live in this process's memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily

from webapp import config

if config.prometheus_multiproc_dir():  # prometheus-client writes there as soon as the first metric exists
    Path(config.prometheus_multiproc_dir()).mkdir(parents=True, exist_ok=True)

REGISTRY = CollectorRegistry()
# Seconds: an SMS handed over in 50 ms, an email in a second, a deferred page hours later.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600)

webhooks = Counter(
    "opsrelay_webhooks_received",
    "Incoming webhooks by source, outcome (accepted, duplicate, refused) and HTTP status.",
    ["source", "outcome", "status"],
    registry=REGISTRY,
)
allowlist_refusals = Counter(
    "opsrelay_allowlist_refused",
    "Requests refused by an IP allow-list, by what the list guards (webhook_source, alertmanager, api_key).",
    ["guard"],
    registry=REGISTRY,
)
incidents = Counter(
    "opsrelay_incidents",
    "Incident transitions: opened, acknowledged, resolved.",
    ["transition"],
    registry=REGISTRY,
)
notifications = Counter(
    "opsrelay_notification_outcomes",
    "Delivery outcomes by channel and status: sent, failed or suppressed when a worker sends, "
    "delivered or failed when the provider reports back.",
    ["channel", "status"],
    registry=REGISTRY,
)
retries = Counter(
    "opsrelay_delivery_retries",
    "Transient delivery failures that were scheduled for another attempt.",
    ["channel"],
    registry=REGISTRY,
)
handoff_latency = Histogram(
    "opsrelay_delivery_handoff_seconds",
    "From the event being received (its notification created) to the notification handed to the provider.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
confirm_latency = Histogram(
    "opsrelay_delivery_confirm_seconds",
    "From the notification handed to the provider to its delivery reported by the provider's callback.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
jobs = Counter(
    "opsrelay_jobs",
    "Jobs run by the workers, by job name and outcome (finished, failed).",
    ["job", "outcome"],
    registry=REGISTRY,
)
periodic_last_run = Gauge(
    "opsrelay_periodic_job_last_run_timestamp_seconds",
    "Unix time at which each periodic job last finished.",
    ["job"],
    multiprocess_mode="max",
    registry=REGISTRY,
)
sla = Counter(
    "opsrelay_sla",
    "Ticket SLA notices: warnings (deadline near) and breaches.",
    ["kind"],
    registry=REGISTRY,
)
login_failures = Counter(
    "opsrelay_login_failures",
    "Failed logins (wrong email or password, inactive account).",
    registry=REGISTRY,
)
sms_segments = Counter(
    "opsrelay_sms_segments",
    "SMS segments handed to the provider, by destination country code.",
    ["country"],
    registry=REGISTRY,
)
sms_spend = Counter(
    "opsrelay_sms_spend",
    "What the SMS handed to the provider cost, in SMS_CURRENCY, by customer id and destination country.",
    ["customer", "country"],
    registry=REGISTRY,
)


def multiprocess_mode() -> bool:
    """Whether prometheus-client keeps values in PROMETHEUS_MULTIPROC_DIR (it reads the variable at import)."""
    return values.ValueClass is not values.MutexValue


class _Scraped:
    """A collector that reads its families at scrape time."""

    def __init__(self, read: Callable[[], Iterable[GaugeMetricFamily]]):
        self._read = read

    def collect(self):
        return list(self._read())


def render(read_now: Callable[[], Iterable[GaugeMetricFamily]]) -> bytes:
    """The exposition text: the recorded metrics (of every process, in multiprocess mode) and what
    `read_now` reads at this scrape."""
    now_registry = CollectorRegistry()
    now_registry.register(_Scraped(read_now))
    if multiprocess_mode():
        recorded = CollectorRegistry()
        multiprocess.MultiProcessCollector(recorded)
    else:
        recorded = REGISTRY
    return generate_latest(recorded) + generate_latest(now_registry)


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def since(moment, now=None) -> float:
    """Seconds from an aware datetime to now (never negative)."""
    now = now or datetime.now(UTC)
    return max((now - moment).total_seconds(), 0.0)


def mark_periodic_run(job: str) -> None:
    periodic_last_run.labels(job=job).set(time.time())
