"""The queue page: each queue's depth, the failed jobs with their error, and retrying them (admins only)."""

from __future__ import annotations

import re

from webapp.extensions import db
from webapp.models import AuditLog
from webapp.queue import DELIVERIES, get_queue


def explode(n: int) -> None:
    """A job that fails, as a broken delivery would."""
    raise RuntimeError(f"provider exploded on {n} (api_key=opsr_never-shown)")


def test_failed_jobs_are_shown_and_retried_from_the_page(app, client, login_as, drain):
    login_as("admin")
    get_queue(app).enqueue_many("tests.test_queue_page.explode", [(7,), (8,)])
    drain()
    page = client.get("/queue")
    assert page.status_code == 200
    rows = re.findall(r'<tr id="job-([^"]+)">', page.text)
    assert len(rows) == 2
    assert "provider exploded on 7" in page.text and "opsr_never-shown" not in page.text
    assert re.search(r"<td>deliveries</td><td>0</td><td>none waiting</td><td>2</td>", page.text)

    answer = client.post(f"/queue/failed/{rows[0]}/retry", follow_redirects=True)
    assert "1 failed job(s) put back on their queue." in answer.text
    queue = get_queue(app).queues[DELIVERIES]
    assert queue.count == 1 and queue.failed_job_registry.count == 1
    assert "provider exploded" in client.get("/queue").text  # the other one still waits for a retry

    client.post("/queue/failed/retry-all")
    assert queue.count == 2 and queue.failed_job_registry.count == 0
    assert db.session.query(AuditLog).filter_by(action="queue.retry").count() == 2
    assert "No failed jobs." in client.get("/queue").text


def test_only_admins_open_the_queue_page(client, login_as):
    login_as("operator")
    assert client.get("/queue").status_code == 403
    assert client.post("/queue/failed/retry-all").status_code == 403


def test_the_queue_page_says_when_redis_is_down(app, make_app, make_user):
    email = make_user("admin").email
    client = make_app(REDIS_URL="redis://127.0.0.1:1/0", RATELIMIT_STORAGE_URI="memory://").test_client()
    client.post("/login", data={"email": email, "password": "pw-for-tests"})
    page = client.get("/queue")
    assert page.status_code == 200 and "The queue (Redis) cannot be reached." in page.text
