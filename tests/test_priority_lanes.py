"""Priority lanes: a page (an SMS of a critical event or of an incident) goes on the PAGES queue, which every
worker serves after PERIODIC and before DELIVERIES (email, digests, outgoing webhooks, reports); routing, the
recovery sweep and retries each put a row on its own lane, and a real worker runs a page queued behind bulk
work first."""

from __future__ import annotations

import pytest
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from tests.routing_helpers import fire, prefer, rows
from tests.test_delivery import wait_for_retry
from tests.test_email_delivery import _smtp_servers, certificate, email_for, smtp, smtp_config  # noqa: F401
from tests.test_outbox import row_ids
from webapp import jobs, outbox
from webapp.extensions import db
from webapp.models import Notification, Severity
from webapp.queue import DELIVERIES, PAGES, get_queue

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def mail(request):
    """The loopback SMTP server (aiosmtpd, STARTTLS) the bulk emails go to: test_email_delivery's fixture."""
    return request.getfixturevalue("smtp")["starttls"]


def waiting(app, queue: str) -> list[int]:
    return sorted(i for job in get_queue(app).queues[queue].jobs for i in row_ids(job))


def finished(app, queue: str) -> list[int]:
    rq_queue = get_queue(app).queues[queue]
    registry = FinishedJobRegistry(queue=rq_queue)
    jobs = rq_queue.job_class.fetch_many(registry.get_job_ids(), rq_queue.connection)
    return sorted(i for job in jobs for i in row_ids(job))


@pytest.mark.parametrize(
    ("channel", "severity", "incident_id", "queue"),
    [
        ("sms", "critical", None, PAGES),
        ("sms", "high", 7, PAGES),  # any page about an incident
        ("sms", "high", None, DELIVERIES),
        ("email", "critical", 7, DELIVERIES),
        ("webhook", "critical", 7, DELIVERIES),
        ("sms", None, None, DELIVERIES),  # a digest, a test send, a verification code
    ],
)
def test_the_lane_of_each_kind_of_notification(channel, severity, incident_id, queue):
    assert outbox.lane(channel, severity, incident_id) == queue


def test_routing_puts_pages_on_their_lane_and_the_rest_on_deliveries(app, make_user, customer):
    user = make_user("operator", phone="+14155550101")
    prefer(user, customer, min_severity_sms=Severity.INFO, min_severity_email=Severity.INFO, storm_guard=False)
    critical = fire(customer=customer)  # source "test": no incident
    high = fire(customer=customer, severity="high")
    incident_page = fire(customer=customer, severity="high", source="generic")
    assert incident_page.incident_id is not None
    page_ids = [rows(e)[(user.id, "sms")].id for e in (critical, incident_page)]
    bulk_ids = [rows(critical)[(user.id, "email")].id, rows(high)[(user.id, "sms")].id]
    assert set(page_ids) <= set(waiting(app, PAGES)) and not set(bulk_ids) & set(waiting(app, PAGES))
    assert set(bulk_ids) <= set(waiting(app, DELIVERIES))


def test_a_critical_page_queued_after_bulk_jobs_is_run_first_by_a_real_worker(
    app, make_user, customer, drain, twilio, mail
):
    smtp_config(customer, mail, "starttls", from_email="alerts@acme.example")
    bulk = [email_for(customer, f"ops{i}@acme.example") for i in range(30)]
    outbox.deliver([n.id for n in bulk])
    db.session.commit()
    admin = make_user("admin", phone="+14155550101", customers=[])  # the admin role's default: critical by SMS
    page = rows(fire(customer=customer, title="DatabaseDown"))[(admin.id, "sms")]
    assert len(waiting(app, DELIVERIES)) >= 30 and waiting(app, PAGES) == [page.id]

    drain()
    db.session.expire_all()
    page = db.session.get(Notification, page.id)
    emails = [db.session.get(Notification, n.id) for n in bulk]
    assert str(page.status) == "sent" and all(str(n.status) == "sent" for n in emails)
    assert page.sent_at < min(n.sent_at for n in emails)  # queued last, run first
    assert len(mail.messages) == 30


def test_the_recovery_sweep_and_a_retry_put_a_page_back_on_its_lane(app, make_user, customer, drain, twilio):
    admin = make_user("admin", phone="+14155550101", customers=[])
    page = rows(fire(customer=customer))[(admin.id, "sms")]
    for queue in get_queue(app).queues.values():
        queue.empty()  # Redis lost its jobs
    jobs.recover_notifications(after_outage=True)
    assert waiting(app, PAGES) == [page.id] and page.id not in waiting(app, DELIVERIES)

    twilio.fail_next("+14155550101", 20429, headers={"Retry-After": "1"})  # too many requests: retry
    drain()
    page = db.session.get(Notification, page.id)
    assert str(page.status) == "queued"
    scheduled = ScheduledJobRegistry(queue=get_queue(app).queues[PAGES]).get_job_ids()
    assert len(scheduled) == 1  # the retry waits for its time on the page lane
    wait_for_retry(page)
    drain()
    assert (str(page.status), page.attempts) == ("sent", 2)
    assert finished(app, PAGES).count(page.id) == 2  # the recovered job, then its retry, both on PAGES
    assert page.id not in finished(app, DELIVERIES)
