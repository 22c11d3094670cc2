"""GitHub webhooks: X-Hub-Signature-256 verified; a merged pull request adds a timeline entry to the
tickets it names (#123 or OPS-123) and an event for subscribers."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from flask import request

from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import EventStatus, Severity, Ticket, WebhookSource
from webapp.services.events import ingest
from webapp.services.integrations import webhook_sources
from webapp.services.tickets import tickets
from webapp.webhooks import PARSERS, bp, raw_json_body, read_json_object, store, unauthorized, webhook_doc

SOURCE = "github"
SIGNATURE_HEADER = "X-Hub-Signature-256"
TICKET_REF = re.compile(r"(?<![\w/-])(?:OPS-|#)(\d{1,9})\b", re.IGNORECASE)
MAX_REFS = 50


def ticket_refs(*texts: str | None) -> list[int]:
    """Ticket ids named as #123 or OPS-123, in order of appearance, each once."""
    found: list[int] = []
    for text in texts:
        for match in TICKET_REF.finditer(text or ""):
            number = int(match.group(1))
            if number not in found:
                found.append(number)
    return found[:MAX_REFS]


def parse(payload: dict[str, Any], event: str = "pull_request") -> list[ingest.NormalisedEvent]:
    """Pure: a merged pull request to one informational event; [] for anything else."""
    if event != "pull_request" or payload.get("action") != "closed":
        return []
    pr = payload.get("pull_request")
    if not isinstance(pr, dict):
        raise InvalidPayload("Not a pull_request webhook.", {"pull_request": "required object"})
    if pr.get("merged") is not True:
        return []
    errors = {}
    number = pr.get("number", payload.get("number"))
    if not isinstance(number, int) or isinstance(number, bool):
        errors["pull_request.number"] = "required integer"
    title = pr.get("title")
    if not isinstance(title, str):
        errors["pull_request.title"] = "required string"
    body = pr.get("body") if isinstance(pr.get("body"), str) else ""
    repo = payload.get("repository")
    repo_name = repo.get("full_name") if isinstance(repo, dict) else None
    if not isinstance(repo_name, str) or not repo_name:
        errors["repository.full_name"] = "required string"
    if errors:
        raise InvalidPayload("Not a valid pull_request webhook.", errors)
    merged_by = pr.get("merged_by")
    login = merged_by.get("login") if isinstance(merged_by, dict) else None
    return [
        ingest.NormalisedEvent(
            source=SOURCE,
            dedup_key=f"{repo_name}#{number}:merged",
            status=EventStatus.INFO,
            severity=Severity.INFO,
            event_type="timeline_updated",
            title=f"PR {repo_name}#{number} merged: {title}"[:300],
            body=body[:5000],
            labels={"repository": repo_name},
            data={
                "number": number,
                "html_url": pr.get("html_url") if isinstance(pr.get("html_url"), str) else None,
                "merged_by": login if isinstance(login, str) else None,
                "merge_commit_sha": pr.get("merge_commit_sha") if isinstance(pr.get("merge_commit_sha"), str) else None,
                "ticket_refs": ticket_refs(title, body),
            },
        )
    ]


PARSERS[SOURCE] = parse


def _timeline(source: WebhookSource):
    """Each newly stored merge adds one entry to every ticket it names (of the source's customer)."""

    def after(result: ingest.IngestResult) -> dict:
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

    return after


@bp.post("/github")
def github():
    body = raw_json_body()
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not header.startswith("sha256="):
        return unauthorized(f"Send the {SIGNATURE_HEADER} header (sha256=<HMAC-SHA256 of the body>).")
    sources = webhook_sources.active(SOURCE, name=request.args.get("source"))
    source = webhook_sources.matching(sources, body, [header.removeprefix("sha256=")])
    if source is None:
        return unauthorized("The signature does not match the secret of an active GitHub source.")
    payload = read_json_object()
    webhook_sources.touch(source)
    event = request.headers.get("X-GitHub-Event", "")
    if event == "ping":
        db.session.commit()
        return {"status": "pong", "source": source.name, "zen": payload.get("zen")}, 200
    items = [replace(item, customer_id=source.customer_id) for item in parse(payload, event)]
    if not items:
        db.session.commit()
        what = f"{event or 'unnamed'} event" + (
            f" ({payload['action']})" if isinstance(payload.get("action"), str) else ""
        )
        return {"status": "ignored", "message": f"GitHub {what} accepted and ignored: only merged PRs act."}, 202
    return store(items, after=_timeline(source), extra={"source": source.name}), 200


OPENAPI_PATHS = {
    "/api/v1/webhooks/github": webhook_doc(
        "GitHub webhook: ping, and merged pull requests naming tickets (#123, OPS-123)",
        security=[],
        headers=[
            (SIGNATURE_HEADER, "sha256=<hex HMAC-SHA256 of the body>"),
            ("X-GitHub-Event", "ping, pull_request, ..."),
            ("X-GitHub-Delivery", "GitHub's delivery id"),
        ],
    )
}
