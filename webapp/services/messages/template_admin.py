"""Editing message templates: per-customer overrides, and a preview rendered with sample data."""

from __future__ import annotations

from flask import current_app

from webapp.channels.sms_text import measure
from webapp.extensions import db
from webapp.models import EVENT_KINDS, Channel, Event, EventStatus, MessageTemplate, Severity, User, utcnow
from webapp.services import audit
from webapp.services.messages.templates import TemplateRenderError, event_context, render_html, render_text


def sample_event(event_type: str) -> Event:
    """An unsaved event with plausible values, for previews."""
    return Event(
        id=12345,
        source="alertmanager",
        event_type=event_type,
        dedup_key="sample",
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="DiskFull on db-1",
        body="Disk /var is 97% full on db-1.",
        labels={"alertname": "DiskFull", "instance": "db-1:9100", "job": "node", "severity": "critical"},
        data={"annotations": {"summary": "Disk almost full", "description": "Disk /var is 97% full on db-1."}},
        created_at=utcnow(),
    )


def sample_context(event_type: str) -> dict:
    """What a template sees when it is sent (as sending.email_context builds it), with sample values."""
    context = event_context(sample_event(event_type))
    context["event"]["job_type"] = "backup"
    context["ticket"] = None
    kind = EVENT_KINDS.get(event_type)
    if kind is not None and kind.about_ticket:
        context["ticket"] = {"key": "OPS-42", "title": "Disk full on db-1", "due_at": "2026-01-01 12:00 UTC", "id": 42}
    context["link"] = current_app.config.get("PUBLIC_BASE_URL", "") + "/"
    return context


def preview(*, event_type: str, channel: Channel, subject: str, body_text: str, body_html: str) -> dict:
    """What the template gives for a sample event; errors per field instead of an exception."""
    context = sample_context(event_type)
    result: dict = {"errors": {}}
    for name, source, render in (
        ("subject", subject, render_text),
        ("body_text", body_text, render_text),
        ("body_html", body_html, render_html),
    ):
        if not source:
            result[name] = ""
            continue
        try:
            result[name] = render(source, context)
        except TemplateRenderError as exc:
            result[name] = ""
            result["errors"][name] = str(exc)
    if channel == Channel.SMS:
        length = measure(result["body_text"])
        result["sms"] = {"encoding": length.encoding, "units": length.units, "segments": length.segments}
    return result


def check(source: str, *, event_type: str = "alert", html: bool = False) -> str | None:
    """The error a template gives with sample data, or None."""
    try:
        (render_html if html else render_text)(source, sample_context(event_type))
    except TemplateRenderError as exc:
        return str(exc)
    return None


def save(template: MessageTemplate, *, subject: str | None, body_text: str, body_html: str | None, by: User) -> dict:
    changes = {}
    for attr, value in (("subject", subject or None), ("body_text", body_text), ("body_html", body_html or None)):
        if getattr(template, attr) != value:
            changes[attr] = "edited"
            setattr(template, attr, value)
    if changes:
        template.updated_at = utcnow()
        db.session.flush()
        audit.record(
            actor=by,
            action="template.update",
            target=template,
            summary=f"{template.event_type}/{template.channel.value}"
            + (f" for customer {template.customer_id}" if template.customer_id else " (default)"),
            changes=changes,
        )
    return changes


class TemplateExists(ValueError):
    def __init__(self, existing: MessageTemplate):
        super().__init__("that template exists already")
        self.existing = existing


def create(*, event_type: str, channel: Channel, customer_id: int | None, by: User) -> MessageTemplate:
    """A new template for (event type, channel), global or for one customer, starting from a sensible text."""
    existing = db.session.scalar(
        db.select(MessageTemplate).where(
            MessageTemplate.event_type == event_type,
            MessageTemplate.channel == channel,
            MessageTemplate.customer_id.is_(None)
            if customer_id is None
            else MessageTemplate.customer_id == customer_id,
        )
    )
    if existing is not None:
        raise TemplateExists(existing)
    template = MessageTemplate(
        customer_id=customer_id,
        name=f"{event_type}_{channel.value}",
        event_type=event_type,
        channel=channel,
        subject=None if channel == Channel.SMS else "[{{ severity|upper }}] {{ summary }}",
        body_text="[{{ severity|upper }}] {{ alertname }}: {{ summary }}",
        body_html="<p><strong>{{ summary }}</strong></p><p>{{ description }}</p>" if channel == Channel.EMAIL else None,
    )
    db.session.add(template)
    db.session.flush()
    audit.record(
        actor=by,
        action="template.create",
        target=template,
        summary=f"{event_type}/{channel.value}" + (f" for customer {customer_id}" if customer_id else " (default)"),
    )
    return template


def override(default: MessageTemplate, *, customer_id: int, by: User) -> MessageTemplate:
    """The customer's own copy of a default template (existing or new)."""
    existing = db.session.scalar(
        db.select(MessageTemplate).where(
            MessageTemplate.customer_id == customer_id,
            MessageTemplate.event_type == default.event_type,
            MessageTemplate.channel == default.channel,
        )
    )
    if existing is not None:
        return existing
    copy = MessageTemplate(
        customer_id=customer_id,
        name=default.name,
        event_type=default.event_type,
        channel=default.channel,
        subject=default.subject,
        body_text=default.body_text,
        body_html=default.body_html,
    )
    db.session.add(copy)
    db.session.flush()
    audit.record(
        actor=by,
        action="template.override",
        target=copy,
        summary=f"customer {customer_id} override of {default.event_type}/{default.channel.value}",
    )
    return copy


def remove_override(template: MessageTemplate, *, by: User) -> None:
    if template.customer_id is None:
        raise ValueError("a default template cannot be removed")
    audit.record(
        actor=by,
        action="template.override_remove",
        target=template,
        summary=f"customer {template.customer_id} back to the default {template.event_type}/{template.channel.value}",
    )
    db.session.delete(template)
    db.session.flush()
