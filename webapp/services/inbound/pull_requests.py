"""Merged pull requests on the tickets they name: each newly stored merge (GitHub) adds one timeline entry to
every ticket it names as #123 or OPS-123, among the tickets of the source's customer (all customers' for a
source the operations team set up without one)."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import Ticket, WebhookSource
from webapp.services.events.ingest import IngestResult
from webapp.services.tickets import tickets


def link_merges(result: IngestResult, *, source: WebhookSource) -> dict:
    """Timeline entries for the merges in `result`. Returns {"tickets": [keys linked]}."""
    linked: list[str] = []
    for event in result.events:
        refs = event.data.get("ticket_refs") or []
        if not refs:
            continue
        query = db.select(Ticket).where(Ticket.id.in_(refs))
        if source.customer_id is not None:
            query = query.where(Ticket.customer_id == source.customer_id)
        found = list(db.session.scalars(query.order_by(Ticket.id)))
        for ticket in found:
            tickets.add_timeline(
                ticket,
                "pull_request",
                event.title,
                data={"url": event.data.get("html_url"), "merged_by": event.data.get("merged_by")},
            )
            linked.append(ticket.key)
        if len(found) == 1:
            event.ticket_id = found[0].id
    return {"tickets": linked}
