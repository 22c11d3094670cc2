"""Who hears about an event, on which channel, and when: every decision becomes a Notification row.

`plan(events)` decides and stores nothing (the dry run and "why not?" use it); `route(events)` writes the
same decisions in bulk. Both read a fixed number of statements whatever the number of users.

Who is a candidate: the active members of the event's customer, every active admin (admins see every
customer), users with a preference for that customer, and the assignee of the event's ticket; or, when
`audience` is given, exactly those users (membership not required) plus the assignee. For a resolved
event: those who were notified while its incident fired (its first page, escalation steps), on the
channels that notified them. The order of the checks, and so the reason a row carries, is: deactivated, not a member,
not subscribed to the event type, job type filtered, channel disabled, below the channel's minimum
severity, no address or opted out; then the timing (quiet hours, aggregation, hourly limit, the storm guard:
see digest.py). Pending rows go to the outbox on their lane: a page (webapp.outbox.lane) ahead of bulk work.
Web rows are the in-app notification: `sent` at once, never held.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from flask import current_app

from webapp import outbox
from webapp.channels import sms_text, voice_twilio
from webapp.models import (
    PERSONAL_CHANNELS,
    Channel,
    Event,
    EventStatus,
    Notification,
    NotificationStatus,
    Role,
    Severity,
    utcnow,
)
from webapp.services import bulk
from webapp.services.messages import templates
from webapp.services.routing.recipients import NOTIFIED, Context, Person, notified_key
from webapp.services.routing.rules import Rules
from webapp.validation import mask_phone

S = NotificationStatus


class Routed(NamedTuple):
    """A decision as stored: the Notification row's id and status."""

    id: int
    status: NotificationStatus


@dataclass
class Decision:
    """One (event, user, channel) decision; `record` False: explained but not stored (outside the role default)."""

    event: Event
    person: Person
    channel: Channel
    status: NotificationStatus
    reason: str | None = None
    recipient: str | None = None
    subject: str | None = None
    body: str = ""
    sms_encoding: str | None = None
    sms_segments: int | None = None
    deliver_after: datetime | None = None
    hold: str | None = None
    record: bool = True
    rules_source: str = ""

    def row(self, now: datetime) -> dict:
        return {
            "event_id": self.event.id,
            "user_id": self.person.id,
            "customer_id": self.event.customer_id,
            "channel": self.channel,
            "recipient": self.recipient,
            "subject": self.subject,
            "body": self.body,
            "status": self.status,
            "reason": self.reason[:300] if self.reason else None,
            "sms_encoding": self.sms_encoding,
            "sms_segments": self.sms_segments,
            "deliver_after": self.deliver_after,
            "hold": self.hold,
            "sent_at": now if self.status == S.SENT else None,
            "created_at": now,
            "updated_at": now,
        }


def route(events: list[Event], *, now: datetime | None = None, audience: list[int] | None = None) -> list[Routed]:
    """Decide and record every (user, channel) pair for these new events, in bulk; never commit.

    Pending rows go to the outbox (delivered once the caller commits); web rows are already sent."""
    now = now or utcnow()
    rows = [d.row(now) for d in plan(events, now=now, audience=audience) if d.record]
    if not rows:
        return []
    inserted = bulk.insert_returning(
        Notification, rows, Notification.id, Notification.status, Notification.channel, Notification.event_id
    )
    events_by_id = {event.id: event for event in events}
    by_lane: dict[str, list[int]] = {}
    for row in inserted:
        if row.status == S.PENDING:
            event = events_by_id[row.event_id]
            by_lane.setdefault(outbox.lane(row.channel, event.severity, event.incident_id), []).append(row.id)
    for queue, ids in by_lane.items():
        outbox.deliver(ids, queue=queue)  # pages on their own lane, ahead of bulk work
    return [Routed(row.id, row.status) for row in inserted]


def plan(
    events: list[Event],
    *,
    now: datetime | None = None,
    audience: list[int] | None = None,
    only_users: list[int] | None = None,
) -> list[Decision]:
    """Every decision for these events, stored nowhere. `only_users`: decide for these users alone under the
    normal rules, every channel included (the "why not?" answer)."""
    now = now or utcnow()
    if not events:
        return []
    ctx = Context.load(events, now=now, audience=audience, only_users=only_users)
    decisions: list[Decision] = []
    for event in events:
        for person in ctx.candidates(event):
            made = _decide_user(ctx, event, person, explain=only_users is not None)
            decisions.extend(made)
            if event.status == EventStatus.FIRING:  # a resolution later in the same batch goes to them too
                ctx.firing_notified.update(
                    (notified_key(event), d.channel, person.id) for d in made if d.record and d.status in NOTIFIED
                )
    return decisions


def _decide_user(ctx: Context, event: Event, person: Person, *, explain: bool) -> list[Decision]:
    rules = ctx.rules(person, event)
    resolved = event.status == EventStatus.RESOLVED
    role_channels = None if rules.explicit or resolved else rules.role_channels(event.event_type, event.severity)
    user_reason = _user_reason(ctx, event, person, rules)
    decisions = []
    for channel in PERSONAL_CHANNELS:
        base = Decision(event=event, person=person, channel=channel, status=S.SUPPRESSED, rules_source=rules.source)
        if resolved:
            if (notified_key(event), channel, person.id) not in ctx.firing_notified:
                if explain:
                    decisions.append(
                        replace(base, reason="was not notified when this alert fired on this channel", record=False)
                    )
                continue
        elif not rules.explicit and (role_channels is None or channel not in role_channels):
            if explain:
                reason = user_reason or _outside_role_default(rules, event, channel)
                decisions.append(replace(base, reason=reason, record=False))
            continue
        elif not channel.on_by_default and channel not in rules.channels:  # asked for by few: stored when on
            if explain:
                reason = user_reason or f"{channel.label} is not turned on in {rules.source}"
                decisions.append(replace(base, reason=reason, record=False))
            continue
        reason = user_reason or _channel_reason(event, person, rules, channel, role_channels, resolved)
        if reason:
            decisions.append(replace(base, reason=reason))
            continue
        decisions.append(_deliverable(ctx, base, rules))
    if event.customer_id in ctx.over_budget and event.severity != Severity.CRITICAL:
        decisions = _sms_by_email(ctx, event, person, rules, decisions)
    return decisions


def _sms_by_email(ctx: Context, event: Event, person: Person, rules: Rules, decisions: list[Decision]) -> list:
    """Past its customer's monthly SMS budget, a non-critical SMS is not sent: the person gets the email
    instead (unless an email was going anyway). Critical pages never come here."""
    going = (S.PENDING, S.DEFERRED)
    sms = next((d for d in decisions if d.channel == Channel.SMS and d.status in going), None)
    if sms is None:
        return decisions
    over = ctx.over_budget[event.customer_id]
    reason = over.reason(ctx.customer_names.get(event.customer_id, str(event.customer_id)), ctx.currency)
    kept = [d for d in decisions if d is not sms]
    if any(d.channel == Channel.EMAIL and d.status in going for d in kept):
        return [*kept, replace(sms, status=S.SUPPRESSED, reason=f"{reason}; an email is going already", hold=None)]
    if not (rules.override_email or person.email):
        return [*kept, replace(sms, status=S.SUPPRESSED, reason=f"{reason}, but the user has no email address")]
    email = _deliverable(ctx, Decision(event, person, Channel.EMAIL, S.SUPPRESSED, rules_source=rules.source), rules)
    email.reason = email.reason or "sent by email instead of SMS: the customer's monthly SMS budget is reached"
    kept = [d for d in kept if d.channel != Channel.EMAIL]  # the email decision it replaces (not going)
    return [*kept, replace(sms, status=S.SUPPRESSED, reason=reason, hold=None, deliver_after=None), email]


def _user_reason(ctx: Context, event: Event, person: Person, rules: Rules) -> str | None:
    if not person.is_active:
        return "the user is deactivated"
    if event.customer_id is not None and not ctx.is_member(person, event):
        return f"not a member of customer {ctx.customer_names.get(event.customer_id, event.customer_id)}"
    if event.customer_id is None and person.role != Role.ADMIN and not ctx.is_member(person, event):
        return "not a member of a customer: events without a customer go to admins"
    if event.status == EventStatus.RESOLVED:
        return None if rules.notify_on_resolve else "chose not to be told when alerts resolve"
    if rules.explicit and rules.event_types and event.event_type not in rules.event_types:
        return f"not subscribed to {event.event_type} events ({rules.source})"
    if rules.job_types and event.job_type and event.job_type not in rules.job_types:
        allowed = ", ".join(sorted(rules.job_types))
        return f"job type {event.job_type} is filtered out: the job-type filter allows only {allowed}"
    return None


def _channel_reason(event, person, rules, channel, role_channels, resolved) -> str | None:
    name = channel.label
    if rules.explicit and channel not in rules.channels:
        return f"{name} is disabled in {rules.source}"
    if not resolved:
        minimum = rules.min_severity[channel] if rules.explicit else role_channels[channel]
        if event.severity.rank < minimum.rank:
            return (
                f"below the minimum severity for {name}: the event is {event.severity}, {name} needs {minimum} or above"
            )
    if channel == Channel.EMAIL and not (rules.override_email or person.email):
        return "no email address: the user has none and the preference sets no override"
    if channel == Channel.VOICE and resolved:
        return "no phone call for an all-clear: the other channels tell it"
    if channel in (Channel.SMS, Channel.VOICE):
        if person.phone is None:
            return "no phone number: add one on the user's page"
        if person.opted_out:  # STOP stops calls to the number too
            since = person.opted_out_at.strftime("%Y-%m-%d %H:%M UTC") if person.opted_out_at else "an unknown time"
            via = f" via {person.opted_out_via}" if person.opted_out_via else ""
            return f"opted out of SMS (number {mask_phone(person.phone)}) since {since}{via}"
    return None


def _outside_role_default(rules: Rules, event: Event, channel: Channel) -> str:
    return (
        f"no {channel.label} for a {event.severity} {event.event_type} event under {rules.source}; "
        "set a notification preference to change it"
    )


def _deliverable(ctx: Context, base: Decision, rules: Rules) -> Decision:
    event, channel, person = base.event, base.channel, base.person
    recipient = {
        Channel.WEB: None,
        Channel.EMAIL: rules.override_email or person.email,
        Channel.SMS: person.phone,
        Channel.VOICE: person.phone,
    }[channel]
    subject, body, note = _render(ctx, event, channel)
    decision = replace(base, status=S.PENDING, recipient=recipient, subject=subject, body=body, reason=note)
    if channel == Channel.SMS:
        length = sms_text.measure(body)
        decision.sms_encoding, decision.sms_segments = length.encoding, length.segments
    if channel == Channel.WEB:
        decision.status = S.SENT  # the row itself is the in-app notification
        return decision
    if channel == Channel.VOICE:
        return _call_timing(decision, rules, ctx.now)
    hold = ctx.timing.hold(person.id, channel, event.customer_id, rules, critical=event.severity == Severity.CRITICAL)
    if hold is not None:
        decision.status, decision.hold, decision.deliver_after, decision.reason = (
            S.DEFERRED,
            hold.kind,
            hold.until,
            hold.reason,
        )
    return decision


def _call_timing(decision: Decision, rules: Rules, now: datetime) -> Decision:
    """A call rings now or not at all: in quiet hours (unless a critical alert rings through them) it is not
    made, since a call hours later about an old alert helps nobody; the other channels hold the page. Calls are
    never grouped into digests or counted by the hourly cap: each one is about one incident."""
    critical = decision.event.severity == Severity.CRITICAL
    if rules.quiet_until(now) is not None and not (critical and rules.critical_bypasses_quiet_hours):
        return replace(decision, status=S.SUPPRESSED, reason=f"{rules.quiet_words()}: no phone call", recipient=None)
    return decision


def _render(ctx: Context, event: Event, channel: Channel) -> tuple[str | None, str, str | None]:
    """(subject, body, note) for this event on this channel: its template, else plain text from the event."""
    key = (id(event), channel)
    if key not in ctx.rendered:
        ctx.rendered[key] = _render_uncached(ctx, event, channel)
    return ctx.rendered[key]


def _render_uncached(ctx: Context, event: Event, channel: Channel) -> tuple[str | None, str, str | None]:
    template = None
    if event.status != EventStatus.RESOLVED:  # templates describe the firing event; a resolution is plain
        template = ctx.templates.get((event.event_type, channel, event.customer_id)) or ctx.templates.get(
            (event.event_type, channel, None)
        )
    note = None
    subject, body = None, None
    if template is not None:
        try:
            context = templates.event_context(event)
            body = templates.render_text(template.body_text, context)
            subject = templates.render_text(template.subject, context) if template.subject else None
        except templates.TemplateRenderError as exc:
            subject, body = None, None
            note = f"template {template.name!r} did not render ({exc}); the plain text was used"
    if channel == Channel.VOICE:
        speech = body or voice_twilio.speech(event.severity, event.title, ctx.customer_names.get(event.customer_id))
        return None, speech, note
    plain_subject, plain_body = plain_text(event)
    subject = (subject or plain_subject)[:300] if channel != Channel.SMS else None
    body = body or (plain_body if channel != Channel.SMS else f"{plain_subject}\n{event.body}".strip())
    if channel == Channel.SMS:
        body = sms_text.shorten(body, int(current_app.config.get("SMS_MAX_SEGMENTS", 3)))
    return subject, body, note


def plain_text(event: Event) -> tuple[str, str]:
    """(subject, body) made from the event itself, for a missing template."""
    state = "RESOLVED" if event.status == EventStatus.RESOLVED else str(event.severity).upper()
    subject = f"[{state}] {event.title}"
    details = [f"Severity: {event.severity}", f"Status: {event.status}", f"Source: {event.source}"]
    if event.job_type:
        details.append(f"Job type: {event.job_type}")
    return subject, "\n".join(part for part in (event.title, event.body, "\n".join(details)) if part)
