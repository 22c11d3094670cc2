"""Incoming webhook sources (PagerDuty, GitHub, generic senders): list, create, rotate the secret, set the IP
allow-list, deactivate.

Admins change them; operators and viewers see their customers' sources. A secret made here is shown once,
in the answer to the POST that made it (never redirected through the session), and is stored encrypted."""

from __future__ import annotations

import secrets

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.integrations import save_allowed_ips
from webapp.admin.ops_forms import AllowedIpsForm, ConfirmForm, customer_choices
from webapp.admin.routing_forms import WebhookSourceForm
from webapp.extensions import db
from webapp.models import Customer, Role, WebhookSource
from webapp.security import role_required
from webapp.services import audit
from webapp.services.integrations import webhook_sources
from webapp.services.people import customers


def _form(**kwargs) -> WebhookSourceForm:
    form = WebhookSourceForm(**kwargs)
    form.customer.choices = [("", "no customer (global)")] + customer_choices(tenancy.current())
    return form


def _allow_forms(sources: list[WebhookSource], failed: tuple[int, AllowedIpsForm] | None) -> dict[int, AllowedIpsForm]:
    """Each source's allow-list form, showing its networks (or, for the one just refused, what was typed)."""
    forms = {s.id: AllowedIpsForm(formdata=None, allowed_ips=", ".join(s.allowed_ips or [])) for s in sources}
    if failed is not None:
        forms[failed[0]] = failed[1]
    return forms


def _render(
    form: WebhookSourceForm | None = None,
    *,
    shown: tuple[WebhookSource, str] | None = None,
    failed: tuple[int, AllowedIpsForm] | None = None,
    status=200,
):
    sources = list(
        db.session.scalars(
            tenancy.current()
            .scoped(db.select(WebhookSource), WebhookSource.customer_id)
            .order_by(WebhookSource.name)
            .limit(200)
        )
    )
    names = customers.names_of(s.customer_id for s in sources)
    is_admin = current_user.has_role(Role.ADMIN)
    return (
        render_template(
            "admin/integrations/sources.html",
            sources=sources,
            customer_names=names,
            is_admin=is_admin,
            form=(form or _form(formdata=None)) if is_admin else None,
            shown=shown,
            allow_forms=_allow_forms(sources, failed) if is_admin else {},
            base_url=current_app.config["PUBLIC_BASE_URL"],
            confirm=ConfirmForm(formdata=None),
        ),
        status,
    )


@bp.get("/integrations/sources")
def webhook_source_list():
    # Where senders post and with which secrets: part of the team's wiring, not a customer's viewer's.
    tenancy.current().require(Role.OPERATOR)
    return _render()


@bp.post("/integrations/sources")
@role_required(Role.ADMIN)
def webhook_source_create():
    form = _form()
    if not form.validate_on_submit():
        return _render(form, status=422)
    customer = db.session.get(Customer, int(form.customer.data)) if form.customer.data else None
    made = None if form.secret.data else secrets.token_urlsafe(32)
    try:
        source = webhook_sources.create(
            name=form.name.data,
            kind=form.kind.data,
            customer=customer,
            secret=form.secret.data or made,
            create_tickets=form.create_tickets.data,
            allowed_ips=form.allowed_ips.data,
            actor=current_user,
        )
    except webhook_sources.SourceInputError as exc:
        db.session.rollback()
        getattr(form, exc.field).errors.append(exc.message)
        return _render(form, status=422)
    db.session.commit()
    if made:
        flash(f"Source “{source.name}” created. Copy its secret now: it is shown only this once.", "success")
    else:
        flash(f"Source “{source.name}” created with the secret you pasted.", "success")
    return _render(shown=(source, made) if made else None)


def _source(source_id: int) -> WebhookSource:
    source = db.session.get(WebhookSource, source_id)
    if source is None:
        abort(404)
    tenancy.current().check_change(source.customer_id)
    return source


@bp.post("/integrations/sources/<int:webhook_source_id>/rotate")
@role_required(Role.ADMIN)
def webhook_source_rotate(webhook_source_id: int):
    source = _source(webhook_source_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("admin.webhook_source_list"))
    secret = secrets.token_urlsafe(32)
    webhook_sources.set_secret(source, secret, actor=current_user)
    db.session.commit()
    flash("New secret made; the old one no longer verifies. Copy it now: it is shown only this once.", "success")
    return _render(shown=(source, secret))


@bp.post("/integrations/sources/<int:webhook_source_id>/allowed-ips")
@role_required(Role.ADMIN)
def webhook_source_allowed_ips(webhook_source_id: int):
    source = _source(webhook_source_id)
    return save_allowed_ips(
        source,
        webhook_sources.set_allowed_ips,
        _render,
        saved=f"“{source.name}” accepts webhooks",
        back=url_for("admin.webhook_source_list"),
    )


@bp.post("/integrations/sources/<int:webhook_source_id>/deactivate")
@role_required(Role.ADMIN)
def webhook_source_deactivate(webhook_source_id: int):
    source = _source(webhook_source_id)
    if ConfirmForm().validate_on_submit():
        if source.is_active:
            source.is_active = False
            audit.record(actor=current_user, action="webhook_source.deactivate", target=source, summary=source.name)
            db.session.commit()
            flash(f"“{source.name}” deactivated: its webhooks are refused from now on.", "success")
        else:
            flash("This source was already inactive.", "info")
    return redirect(url_for("admin.webhook_source_list"))
