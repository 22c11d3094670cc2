"""A source's follow-up of its events (tickets opened and kept in step, timeline entries), run by the routing
job once the events joined their incidents. A sender's request stores what follow-up it asks for with the
events -- a small dict naming one of FOLLOW_UPS and its arguments -- so the job (or the recovery sweep's
second try) runs the same one.
"""

from __future__ import annotations

from collections.abc import Callable

from webapp.extensions import db
from webapp.models import WebhookSource
from webapp.services.events.ingest import IngestResult
from webapp.services.inbound import incident_tickets, pull_requests

FOLLOW_UPS: dict[str, Callable[..., dict]] = {
    "tickets": incident_tickets.open_for_each,  # customer_id, source_label: a ticket for each new incident
    "pagerduty": incident_tickets.follow_pagerduty,  # source: tickets kept in step with PagerDuty's incidents
    "merges": pull_requests.link_merges,  # source: merged pull requests on the tickets they name
}


def tickets(*, customer_id: int, source_label: str) -> dict:
    return {"name": "tickets", "customer_id": customer_id, "source_label": source_label}


def of_source(name: str, source: WebhookSource) -> dict:
    """The follow-up `name` of a webhook source (loaded again by the job: its settings then apply)."""
    return {"name": name, "source_id": source.id}


def run(result: IngestResult) -> dict:
    """Run the follow-up `result` carries, if any (a source deleted meanwhile has none left). Flushes only."""
    spec = dict(result.follow_up or {})
    follow_up = FOLLOW_UPS.get(spec.pop("name", None))
    if follow_up is None:
        return {}
    if "source_id" in spec:
        source = db.session.get(WebhookSource, spec.pop("source_id"))
        if source is None:
            return {}
        spec["source"] = source
    return follow_up(result, **spec)
