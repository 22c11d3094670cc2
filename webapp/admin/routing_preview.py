"""/routing/preview: paste a webhook body or pick a recent event and see who would be notified, on which
channel, when, and why not. The same decisions as real routing; nothing is stored and nothing is sent."""

from __future__ import annotations

import json

from flask import render_template

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.menu import MENU, MenuItem
from webapp.admin.ops_forms import customer_choices
from webapp.admin.routing_forms import RoutingPreviewForm
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.models import SOURCE_KINDS, Event, Role, utcnow
from webapp.security import role_required
from webapp.services.people import customers
from webapp.services.routing import preview
from webapp.validation import shown_recipient

RECENT_EVENTS = 50

MENU.insert(
    next((i + 1 for i, m in enumerate(MENU) if m.endpoint == "admin.delivery_list"), len(MENU)),
    MenuItem("admin.routing_preview", "Routing preview", Role.OPERATOR, "Deliveries"),
)


def _form() -> RoutingPreviewForm:
    principal = tenancy.current()
    form = RoutingPreviewForm()
    form.source.choices = [("", "pick the sender"), *SOURCE_KINDS.choices()]
    recent = db.session.execute(
        principal.scoped(
            db.select(Event.id, Event.title, Event.source, Event.status, Event.created_at), Event.customer_id
        )
        .order_by(Event.id.desc())
        .limit(RECENT_EVENTS)
    )
    form.event.choices = [("", "none: use the body above")] + [
        (str(i), f"#{i} {title} ({source}, {status}, {at:%Y-%m-%d %H:%M})") for i, title, source, status, at in recent
    ]
    head = [("", "as the event says")]
    form.customer.choices = head + customer_choices(principal)
    return form


def _customer_id(form: RoutingPreviewForm) -> int | None:
    return int(form.customer.data) if form.customer.data else None


def _events(form: RoutingPreviewForm) -> tuple[list[Event], bool] | None:
    """The unsaved events to preview and whether to look for redeliveries; None after noting the errors."""
    customer_id = _customer_id(form)
    if form.event.data:
        stored = db.session.get(Event, int(form.event.data))
        if stored is None or not tenancy.current().can_see(stored.customer_id):
            form.event.errors.append("No such event.")
            return None
        event = preview.copy_of(stored)
        if customer_id is not None:
            event.customer_id = customer_id
        return [event], False
    if not form.source.data:
        form.source.errors.append("Pick the webhook's source (or a recent event below).")
    if not (form.payload.data or "").strip():
        form.payload.errors.append("Paste the webhook body (or pick a recent event below).")
    if form.source.errors or form.payload.errors:
        return None
    try:
        payload = json.loads(form.payload.data)
    except ValueError as exc:
        form.payload.errors.append(f"Not JSON: {exc}")
        return None
    try:
        return preview.events_from_webhook(form.source.data, payload, customer_id), True
    except InvalidPayload as exc:
        for name, message in exc.fields.items():
            target = form.source if name == "source" else form.payload
            target.errors.append(f"{exc.message} {message}" if target is form.payload else message)
        if not exc.fields:
            form.payload.errors.append(exc.message)
        return None


def _check_customers(form: RoutingPreviewForm, events: list[Event]) -> bool:
    """Operators preview only their customers' events: an event naming none needs a customer picked."""
    principal = tenancy.current()
    for event in events:
        if not principal.can_see(event.customer_id):
            form.customer.errors.append(
                "This event names no customer: pick one of yours."
                if event.customer_id is None
                else "This event belongs to a customer you do not look after: pick one of yours."
            )
            return False
    return True


def _rows(result: preview.Preview) -> list[dict]:
    """Every decision, then the customer's people who would hear nothing and why ("not notified")."""
    index = {id(event): position for position, event in enumerate(result.events)}
    rows = []
    passed_over = {id(d) for d in result.passed_over}
    for decision in [*result.decisions, *result.passed_over]:
        recipient = shown_recipient(decision.channel, decision.recipient)
        rows.append(
            {
                "event": index[id(decision.event)] + 1,
                "person": decision.person,
                "channel": str(decision.channel),
                "decision": "not notified" if id(decision) in passed_over else str(decision.status),
                "reason": decision.reason,
                "hold": decision.hold,
                "recipient": recipient,
                "rules": decision.rules_source,
                "when": preview.when(decision, result.at),
            }
        )
    return rows


@bp.route("/routing/preview", methods=["GET", "POST"])
@role_required(Role.OPERATOR)
def routing_preview():
    form = _form()
    result, rows, status = None, [], 200
    if form.validate_on_submit():
        found = _events(form)
        if found is not None and _check_customers(form, found[0]):
            events, check_duplicates = found
            result = preview.run(events, now=utcnow(), check_duplicates=check_duplicates)
            rows = _rows(result)
            db.session.rollback()  # nothing of the dry run stays behind, even by accident
    if form.is_submitted() and result is None:
        status = 422
    names = customers.names_of(e.customer_id for e in result.events) if result is not None else {}
    return (
        render_template(
            "admin/routing/preview.html",
            form=form,
            preview=result,
            rows=rows,
            customer_names=names,
            event_rows=[(e, result.duplicates.get(id(e)), result.escalation.get(id(e))) for e in result.events]
            if result
            else [],
        ),
        status,
    )
