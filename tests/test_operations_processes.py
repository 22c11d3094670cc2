"""OpsRelay as it runs in production: the Procfile's gunicorn with two workers and a worker.py, on their own
Redis, sharing PROMETHEUS_MULTIPROC_DIR. /metrics adds up every process's counts exactly; one request id
follows a webhook from the web log line into the job's lines; no API key reaches a log."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from rq.job import Job
from twilio.request_validator import RequestValidator

from tests.conftest import TWILIO_TOKEN, load_fixture, twilio_settings
from tests.test_readme import free_port
from webapp.extensions import db
from webapp.models import Notification
from webapp.queue import Scheduler

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "test-alert-token"
METRICS_TOKEN = "scrape-token-for-tests"


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out or ""


@pytest.fixture
def own_redis():
    """A redis-server of this test's own on a spare port (the shared one is never touched)."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],  # noqa: S607
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: _pings(redis.Redis.from_url(url)), 15, "redis-server")
    yield url
    server.terminate()
    server.wait(10)


def _pings(connection) -> bool:
    try:
        return bool(connection.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


def alert(name: str) -> bytes:
    payload = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    payload = copy.deepcopy(payload)
    payload["alerts"][0]["labels"]["alertname"] = name
    payload["alerts"][0]["fingerprint"] = f"fp-{name}"
    payload["commonLabels"]["alertname"] = name
    return json.dumps(payload).encode()


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_metrics_logs_and_request_id_across_two_gunicorn_workers_and_a_worker_process(
    app, make_user, database, twilio, own_redis, tmp_path
):
    make_user("admin", phone="+14155550101")
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"PROMETHEUS_MULTIPROC_DIR"}},
        **twilio_settings(twilio.base_url),
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "DATABASE_URL": database["uri"],
        "REDIS_URL": own_redis,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "SECRET_KEY": "secret-for-tests",
        "ALERT_WEBHOOK_TOKEN": TOKEN,
        "METRICS_TOKEN": METRICS_TOKEN,
        "PUBLIC_BASE_URL": base,
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    web = subprocess.Popen(  # noqa: S603
        ["bash", "-c", "exec " + procfile["web"]],  # noqa: S607
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    web_log = worker_log = ""
    try:
        wait_for(lambda: _answers(base + "/healthz"), 60, "gunicorn")
        # worker.py's first scheduler round finds a Redis it has not seen and requeues what is pending (after
        # a data loss that is right); wait for it, so the jobs counted below are exactly the webhooks' own.
        scheduler_seen = redis.Redis.from_url(own_redis)
        wait_for(lambda: scheduler_seen.exists(Scheduler.ALIVE), 60, "worker.py's scheduler")
        # ... and for that sweep to have run: it also routes unrouted events, without a request id
        sweep = "periodic-recover-notifications"
        wait_for(lambda: Job.fetch(sweep, connection=scheduler_seen).get_status() == "finished", 60, "the first sweep")
        post = requests.Session()
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        hook = base + "/api/v1/webhooks/alertmanager"
        first = post.post(hook, data=alert("DiskFull"), headers={**auth, "X-Request-ID": "rid-ops-1"})
        assert first.status_code == 200 and first.json()["new_events"] == 1
        for name in ("CpuHot", "QueueStuck"):
            assert post.post(hook, data=alert(name), headers=auth).status_code == 200
        duplicate = post.post(hook, data=alert("DiskFull"), headers=auth)
        assert duplicate.json()["duplicates"] == 1
        wrong_token = {**auth, "Authorization": "Bearer wrong"}
        assert post.post(hook, data=alert("X"), headers=wrong_token).status_code == 401
        assert post.post(hook, data=b'{"alerts": 1}', headers=auth).status_code == 422
        # A key in the query string (the README warns against it) must not reach any log.
        post.get(base + "/api/v1/auth/verify?api_key=opsr_never-in-a-log-123")

        def sent() -> list[Notification]:
            db.session.expire_all()
            return list(db.session.scalars(db.select(Notification).where(Notification.status == "sent")))

        wait_for(lambda: len(sent()) == 3, 60, "three SMS sent by worker.py")
        validator = RequestValidator(TWILIO_TOKEN)
        for notification in sent()[:2]:
            params = {"MessageSid": notification.provider_id, "MessageStatus": "delivered"}
            signature = validator.compute_signature(base + "/api/v1/webhooks/twilio/status", params)
            answer = post.post(
                base + "/api/v1/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": signature}
            )
            assert answer.status_code == 204

        assert requests.get(base + "/metrics", timeout=10).status_code == 401
        scrapes = [
            samples(post.get(base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text)
            for _ in range(4)  # whichever worker answers, the sums are the same
        ]
    finally:
        web_log = stop(web)
        worker_log = stop(worker)

    for found in scrapes:
        webhooks = 'opsrelay_webhooks_received_total{outcome="%s",source="%s",status="%s"}'
        assert found[webhooks % ("accepted", "alertmanager", "200")] == 3
        assert found[webhooks % ("duplicate", "alertmanager", "200")] == 1
        assert found[webhooks % ("refused", "alertmanager", "401")] == 1
        assert found[webhooks % ("refused", "alertmanager", "422")] == 1
        assert found[webhooks % ("accepted", "twilio_status", "204")] == 2
        assert found['opsrelay_notification_outcomes_total{channel="sms",status="sent"}'] == 3
        assert found['opsrelay_notification_outcomes_total{channel="sms",status="delivered"}'] == 2
        assert found['opsrelay_delivery_handoff_seconds_count{channel="sms"}'] == 3
        assert found['opsrelay_delivery_confirm_seconds_count{channel="sms"}'] == 2
        finished = [f'opsrelay_jobs_total{{job="{job}",outcome="finished"}}' for job in ("deliver", "deliver_batch")]
        assert sum(found.get(name, 0) for name in finished) >= 1  # the three rows: one job each, or batched
        assert found['opsrelay_notifications{channel="sms",status="delivered"}'] == 2
        assert found['opsrelay_queue_jobs{queue="deliveries"}'] == 0
        assert found["opsrelay_queue_up"] == 1
        assert found["opsrelay_workers"] == 1
        last_recovery = found['opsrelay_periodic_job_last_run_timestamp_seconds{job="recover_notifications"}']
        assert last_recovery > time.time() - 120

    # One request id from the web log line (ours and gunicorn's access line) into the delivery job's lines.
    web_lines = [json.loads(line) for line in web_log.splitlines() if line.startswith("{")]
    request_line = [
        e for e in web_lines if e.get("path") == "/api/v1/webhooks/alertmanager" and e.get("request_id") == "rid-ops-1"
    ]
    assert len(request_line) == 1 and request_line[0]["status"] == 200
    assert re.search(r'"POST /api/v1/webhooks/alertmanager HTTP/1.1" 200 .* request_id=rid-ops-1', web_log)
    job_lines = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{")]
    traced = [e for e in job_lines if e.get("request_id") == "rid-ops-1" and e["logger"].startswith("webapp")]
    delivered = [e for e in traced if e.get("job") in ("deliver", "deliver_batch") and e.get("outcome") == "finished"]
    assert delivered, worker_log[-3000:]
    assert any("sent via sms" in e["message"] for e in traced)
    assert all(e.get("job_id") for e in traced), [e for e in traced if not e.get("job_id")]
    # The query's api_key is redacted from both our line and gunicorn's access line.
    assert "never-in-a-log" not in web_log + worker_log
    assert "api_key=[redacted]" in web_log


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False
