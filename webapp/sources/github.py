"""GitHub webhooks: the pure parser (a merged pull request to an informational event naming tickets)."""

from __future__ import annotations

import re
from typing import Any

from webapp.errors import InvalidPayload
from webapp.models import EventStatus, Severity
from webapp.sources.normalised import NormalisedEvent

SOURCE = "github"


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


def parse(payload: dict[str, Any], event: str = "pull_request") -> list[NormalisedEvent]:
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
        NormalisedEvent(
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
