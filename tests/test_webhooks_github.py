"""POST /api/v1/webhooks/github: X-Hub-Signature-256, ping, merged PRs on ticket timelines."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.conftest import load_fixture
from webapp.extensions import db
from webapp.models import Event, TimelineEntry
from webapp.services.integrations import webhook_sources
from webapp.sources.github import ticket_refs

URL = "/api/v1/webhooks/github"
SECRET = "github-secret-0123456789"


def post(client, body, *, event="pull_request", secret=SECRET, delivery="d-1", headers=None, **kwargs):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if secret:
        sent["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    kwargs.setdefault("content_type", "application/json")
    return client.post(URL, data=raw, headers={**sent, **(headers or {})}, **kwargs)


def merged_pr() -> dict:
    return json.loads(load_fixture("webhooks/github_pull_request_merged.json"))


@pytest.fixture
def source(app, customer):
    source = webhook_sources.create(name="gh-acme", kind="github", customer=customer, secret=SECRET)
    db.session.commit()
    return source


def test_ping_is_answered(client, source):
    response = post(client, load_fixture("webhooks/github_ping.json"), event="ping")
    assert response.status_code == 200
    assert response.json["status"] == "pong"
    assert response.json["zen"] == "Keep it logically awesome."


def test_merged_pr_adds_a_timeline_entry_to_each_named_ticket_of_the_customer(
    client, source, customer, make_customer, make_ticket, route
):
    one = make_ticket(customer=customer, title="Checkout slow")  # OPS-1, named in the title
    two = make_ticket(customer=customer, title="Pool exhausted")  # #2, named in the body
    make_ticket(customer=customer, title="Unrelated")  # OPS-3: not named
    response = post(client, merged_pr())
    assert response.status_code == 200, response.json
    assert response.json["routing"] == "queued"
    route()  # the routing job runs the source's follow-up: the timeline entries
    entries = db.session.scalars(db.select(TimelineEntry).order_by(TimelineEntry.ticket_id)).all()
    assert [e.ticket_id for e in entries] == [one.id, two.id]  # OPS-999 does not exist; OPS-3 is not named
    for ticket in (one, two):
        entries = db.session.scalars(db.select(TimelineEntry).where(TimelineEntry.ticket_id == ticket.id)).all()
        assert [(e.kind, e.data["url"]) for e in entries] == [
            ("pull_request", "https://github.com/acme/checkout/pull/42")
        ]
        assert "acme/checkout#42 merged" in entries[0].body
    event = db.session.scalars(db.select(Event)).one()
    assert (event.source, event.event_type, event.customer_id) == ("github", "timeline_updated", customer.id)


def test_another_customers_ticket_is_not_touched(client, source, make_customer, make_ticket, route):
    other = make_customer("Other Corp")
    make_ticket(customer=other)  # OPS-1 of another customer
    response = post(client, merged_pr())
    assert response.status_code == 200 and route() == 1
    assert db.session.scalars(db.select(Event)).one().ticket_id is None
    assert db.session.scalar(db.select(db.func.count(TimelineEntry.id))) == 0


def test_redelivered_merge_adds_nothing_twice(client, source, customer, make_ticket, route):
    ticket = make_ticket(customer=customer)
    assert post(client, merged_pr()).json["new_events"] == 1
    route()
    assert db.session.scalars(db.select(Event)).one().ticket_id == ticket.id  # OPS-1
    again = post(client, merged_pr(), delivery="d-2")
    assert again.status_code == 200 and again.json["duplicates"] == 1 and again.json["routing"] == "none"
    assert route() == 0
    assert db.session.scalar(db.select(db.func.count(TimelineEntry.id))) == 1


@pytest.mark.parametrize(
    ("event", "change"),
    [("pull_request", {"action": "opened"}), ("pull_request", {"merged": False}), ("push", {})],
)
def test_other_events_and_unmerged_prs_are_202_ignored(client, source, event, change):
    body = merged_pr()
    if "merged" in change:
        body["pull_request"]["merged"] = False
    body.update({k: v for k, v in change.items() if k != "merged"})
    response = post(client, body, event=event)
    assert response.status_code == 202
    assert "ignored" in response.json["message"]
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 0


def test_bad_and_missing_signatures_are_401(client, source):
    assert post(client, merged_pr(), secret="another-secret-0123456").status_code == 401
    missing = post(client, merged_pr(), secret=None)
    assert missing.status_code == 401 and "X-Hub-Signature-256" in missing.json["error"]["message"]
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 0


def test_malformed_wrong_type_oversized_wrong_method(client, app, source):
    assert post(client, b"{not json").status_code == 400
    assert post(client, b"x", content_type="text/plain").status_code == 415
    assert post(client, b'{"a": "' + b"x" * app.config["MAX_CONTENT_LENGTH"] + b'"}').status_code == 413
    assert client.put(URL).status_code == 405
    broken = merged_pr()
    broken["pull_request"]["number"] = "42"
    response = post(client, broken)
    assert response.status_code == 422 and "pull_request.number" in response.json["error"]["fields"]


def test_ticket_references():
    assert ticket_refs("Fix OPS-12 and #7", "also ops-12, not abc#9 nor x/OPS-4") == [12, 7]
