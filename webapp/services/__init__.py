"""The rules of OpsRelay, one sub-package per concern, each importing only the ones listed before it:

people (customers, users, phones, preferences) · integrations (SMTP configs, outgoing endpoints, incoming
sources, API keys) · messages (templates) · routing (rules, decisions, holds and digests, outgoing fan-out,
the dry run) · events (ingest, escalation) · tickets (tickets, SLA, policies, reports, list queries) ·
inbound (acknowledgements, SMS replies, webhook follow-ups) · delivery (sending, retries, recovery, test
sends, the delivery log) · overview (what the dashboard and inbox read). audit.py and bulk.py serve them all.

A service takes ids, rows and a `tenancy.Principal`, never `request`, `flash` or `current_user`; it
validates, applies the tenant boundary, audits, and flushes — it never commits. Work for a worker goes to
`webapp.outbox`, which hands it to the queue when the caller commits. tests/test_architecture.py keeps the
imports going one way.
"""
