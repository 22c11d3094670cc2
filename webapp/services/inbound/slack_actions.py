"""Slack's Acknowledge button: a click (already signature-checked by the route) acknowledges the incident its
value names, through the one ack path (acks.acknowledge), and answers with the message that replaces the
button -- in the HTTP answer, and posted to the click's response_url once the transaction commits (the job
webapp.jobs.slack.reply, through the egress policy), which is how Slack updates a message after a block action.

Who: the Slack user is matched to an OpsRelay account by the email of their Slack profile when Slack sends it;
the account is credited only if it may act on the incident's customer (an operator or admin who sees it), as
on the incident page. Otherwise the acknowledgement is recorded under the Slack user's name ("Slack: @name").
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from webapp import outbox, tenancy
from webapp.channels import slack
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import Event, Incident, User, utcnow
from webapp.queue import DELIVERIES
from webapp.services.inbound import acks
from webapp.services.routing import chat
from webapp.validation import normalise_email

REPLY_JOB = "webapp.jobs.slack.reply"  # by path: services hand work to the queue through the outbox
WEB = ("http", "https")


def _incident_id(payload: dict[str, Any]) -> int:
    """The incident the clicked Acknowledge button names; InvalidPayload for anything else."""
    actions = payload.get("actions")
    if payload.get("type") != "block_actions" or not isinstance(actions, list):
        raise InvalidPayload("Not a Slack block_actions payload.", {"type": "expected block_actions with actions"})
    for action in actions:
        if isinstance(action, dict) and action.get("action_id") == slack.ACK_ACTION:
            value = action.get("value")
            number = value.removeprefix(chat.ACK_PREFIX) if isinstance(value, str) else ""
            if value != number and number.isdigit() and len(number) <= 12:
                return int(number)
            raise InvalidPayload("The Acknowledge button names no incident.", {"actions": "value: incident:<id>"})
    raise InvalidPayload("No Acknowledge action in this payload.", {"actions": "no acknowledge action"})


def _slack_user(payload: dict[str, Any]) -> tuple[str, str | None]:
    """(the Slack user's name as shown, their profile email if Slack sent one)."""
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    name = next((user[k] for k in ("username", "name", "id") if isinstance(user.get(k), str) and user[k]), "someone")
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    email = user.get("email") if isinstance(user.get("email"), str) else profile.get("email")
    return name[:60], email if isinstance(email, str) else None


def _account(email: str | None, incident: Incident) -> User | None:
    """The active OpsRelay user with this email who may act on the incident's customer, if any."""
    if not email:
        return None
    try:
        email = normalise_email(email)
    except ValueError:
        return None
    user = db.session.scalar(db.select(User).where(User.email == email, User.is_active.is_(True)))
    if user is None or not tenancy.Principal.of_user(user).can_change(incident.customer_id):
        return None
    return user


def acknowledge(payload: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """Acknowledge the incident the click names; returns Slack's answer: the message without its buttons, with
    who acknowledged it (or why nothing changed). Flushes; the caller commits."""
    incident_id = _incident_id(payload)
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        return {"response_type": "ephemeral", "replace_original": False, "text": "This incident no longer exists."}
    name, email = _slack_user(payload)
    user = _account(email, incident)
    via = "Slack" if user is not None else f"Slack: @{name}"
    result = acks.acknowledge(incident, by=user, via=via, now=now or utcnow())
    who = user.name if user is not None else f"@{name} (Slack)"
    if result.acknowledged:
        note = f"Acknowledged by {who}"
    else:
        state = str(incident.state)
        by = incident.acknowledged_by.name if incident.acknowledged_by else incident.acknowledged_via
        note = f"Already {state}" + (f" ({by})" if by and state == "acknowledged" else "")
    first = db.session.scalar(db.select(Event).where(Event.incident_id == incident.id).order_by(Event.id).limit(1))
    message = chat.message(first, interactive=False) if first is not None else None
    answer: dict[str, Any] = {"replace_original": True, "text": f"{note}: #{incident.id} {incident.title}"}
    if message is not None:
        answer["blocks"] = slack.blocks(message, note=f"✅ {note}")
    response_url = payload.get("response_url")
    if isinstance(response_url, str) and len(response_url) <= 2000 and urlsplit(response_url).scheme in WEB:
        outbox.add(REPLY_JOB, [(response_url, json.dumps(answer))], queue=DELIVERIES)  # the egress policy decides
    return answer
