"""GitHub webhooks: X-Hub-Signature-256 verified; a merged pull request adds a timeline entry to the
tickets it names (#123 or OPS-123) and an event for subscribers."""

from __future__ import annotations

from dataclasses import replace

from flask import request

from webapp.extensions import db
from webapp.inputs import raw_json_body, read_json_object
from webapp.models import SOURCE_KINDS
from webapp.services.inbound import follow_ups
from webapp.services.integrations import webhook_sources
from webapp.sources import github
from webapp.webhooks import admit, bp, store, unauthorized, webhook_doc

SIGNATURE_HEADER = SOURCE_KINDS[github.SOURCE].signature_header


@bp.post("/github", endpoint="github")
def github_webhook():
    body = raw_json_body()
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not header.startswith("sha256="):
        return unauthorized(f"Send the {SIGNATURE_HEADER} header (sha256=<HMAC-SHA256 of the body>).")
    sources = webhook_sources.active(github.SOURCE, name=request.args.get("source"))
    source = webhook_sources.matching(sources, body, [header.removeprefix("sha256=")])
    if source is None:
        return unauthorized("The signature does not match the secret of an active GitHub source.")
    admit(source)
    payload = read_json_object()
    webhook_sources.touch(source)
    event = request.headers.get("X-GitHub-Event", "")
    if event == "ping":
        db.session.commit()
        return {"status": "pong", "source": source.name, "zen": payload.get("zen")}, 200
    items = [replace(item, customer_id=source.customer_id) for item in github.parse(payload, event)]
    if not items:
        db.session.commit()
        what = f"{event or 'unnamed'} event" + (
            f" ({payload['action']})" if isinstance(payload.get("action"), str) else ""
        )
        return {"status": "ignored", "message": f"GitHub {what} accepted and ignored: only merged PRs act."}, 202
    return store(items, follow_up=follow_ups.of_source("merges", source), extra={"source": source.name}), 200


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
