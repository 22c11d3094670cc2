"""Message templates: lookup with per-customer override, rendering in a sandbox."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import nulls_last

from webapp.extensions import db
from webapp.models import Channel, Event, MessageTemplate

_text_env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)
_html_env = SandboxedEnvironment(autoescape=True)
_ENVIRONMENTS = {"text": _text_env, "html": _html_env}


class TemplateRenderError(Exception):
    """A template that does not render (syntax error, unsafe access); the message says where."""


def find(event_type: str, channel: Channel, *, customer_id: int | None) -> MessageTemplate | None:
    """The customer's own template for (event type, channel), else the global default."""
    return db.session.scalars(
        db.select(MessageTemplate)
        .where(
            MessageTemplate.event_type == event_type,
            MessageTemplate.channel == channel,
            (MessageTemplate.customer_id == customer_id) | MessageTemplate.customer_id.is_(None),
        )
        .order_by(nulls_last(MessageTemplate.customer_id.desc()))
        .limit(1)
    ).first()


def render_text(source: str, context: dict) -> str:
    try:
        return _compiled("text", source).render(**context).strip()
    except TemplateError as exc:
        raise TemplateRenderError(f"template error: {exc}") from None


def render_html(source: str, context: dict) -> str:
    """HTML (email bodies): every value is escaped unless the template marks it safe."""
    try:
        return _compiled("html", source).render(**context)
    except TemplateError as exc:
        raise TemplateRenderError(f"template error: {exc}") from None


@lru_cache(maxsize=512)
def _compiled(kind: str, source: str) -> Template:
    """A template's compiled form, kept by its source: compiling costs milliseconds, and every alert renders
    the same few templates. Compiled templates are immutable (the sandbox checks run while rendering), so
    threads share them; an edited template has a new source and compiles anew."""
    return _ENVIRONMENTS[kind].from_string(source)


def event_context(event: Event) -> dict:
    """What a template may use about an event: its fields, and for alerts the usual labels."""
    labels = event.labels or {}
    annotations = (event.data or {}).get("annotations", {})
    return {
        "event": {
            "id": event.id,
            "title": event.title,
            "body": event.body,
            "severity": str(event.severity),
            "status": str(event.status),
            "source": event.source,
            "event_type": event.event_type,
        },
        "labels": labels,
        "annotations": annotations,
        "alertname": labels.get("alertname", event.title),
        "service": labels.get("service") or labels.get("job", ""),
        "instance": labels.get("instance", ""),
        "severity": str(event.severity),
        "status": str(event.status),
        "summary": annotations.get("summary", event.title),
        "description": annotations.get("description", event.body),
        "truncated": _truncated(event),  # alerts Alertmanager left out of this group's notification
        "incident_id": event.incident_id,
        "job_url": (event.data or {}).get("job_url") or "",
    }


def _truncated(event: Event) -> int:
    value = (event.data or {}).get("truncatedAlerts")
    return value if isinstance(value, int) and value > 0 else 0
