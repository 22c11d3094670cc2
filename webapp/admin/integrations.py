"""Integrations: inbound senders (Alertmanager, Twilio URLs), outgoing webhook endpoints, API keys."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func
from wtforms.validators import InputRequired

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.ops_forms import AllowedIpsForm, ApiKeyForm, ConfirmForm, WebhookEndpointForm, customer_choices
from webapp.extensions import db
from webapp.inputs import arg_id
from webapp.models import ApiKey, Customer, Event, Notification, Role, User, WebhookDelivery, WebhookEndpoint
from webapp.services.delivery import test_sends
from webapp.services.integrations import api_keys, endpoints
from webapp.services.people import customers
from webapp.tenancy import SCOPES

RECENT_ATTEMPTS = 50


def _customer_choices(form_field, *, allow_global: bool) -> None:
    """Admins may make global objects (no customer); others must pick one of their customers."""
    head = [("", "all customers (global)")] if allow_global else []
    form_field.choices = head + customer_choices(tenancy.current())
    if not allow_global:
        form_field.validators = (InputRequired(message="Pick one of your customers."),)


def _chosen_customer(form_field) -> Customer | None:
    """The customer picked, checked for a change; a global object (no customer) is for admins only."""
    customer = db.session.get(Customer, int(form_field.data)) if form_field.data else None
    tenancy.current().check_change(customer.id if customer else None)
    return customer


def _endpoint_form(**kwargs) -> WebhookEndpointForm:
    form = WebhookEndpointForm(**kwargs)
    _customer_choices(form.customer, allow_global=tenancy.current().can_change(None))
    return form


def _key_form(**kwargs) -> ApiKeyForm:
    form = ApiKeyForm(**kwargs)
    is_admin = current_user.has_role(Role.ADMIN)
    _customer_choices(form.customer, allow_global=tenancy.current().can_change(None))
    if not is_admin:
        form.scope.choices = [("read", "read"), ("write", "write")]
    return form


def alertmanager_url() -> str:
    """Where Alertmanager posts: the receiver's url."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/api/v1/webhooks/alertmanager"


def _inbound() -> dict:
    base = current_app.config["PUBLIC_BASE_URL"]
    last_alert = db.session.scalar(db.select(func.max(Event.created_at)).where(Event.source == "alertmanager"))
    return {
        "alertmanager_url": alertmanager_url(),
        "alert_token": endpoints.token_fingerprint(current_app.config.get("ALERT_WEBHOOK_TOKEN")),
        "last_alert": last_alert,
        "twilio_status_url": f"{base}/api/v1/webhooks/twilio/status",
        "twilio_inbound_url": f"{base}/api/v1/webhooks/twilio/inbound",
        "twilio_configured": not current_app.extensions["opsrelay_sms"].simulated,
        "public_base_url": base,
        "alert_allowed_ips": current_app.config["ALERT_WEBHOOK_ALLOWED_IPS"],
    }


def _render(
    *,
    endpoint_form=None,
    key_form=None,
    shown_key: str | None = None,
    failed: tuple[int, AllowedIpsForm] | None = None,
    status: int = 200,
):
    principal = tenancy.current()
    endpoint_rows = list(
        db.session.scalars(
            principal.scoped(db.select(WebhookEndpoint), WebhookEndpoint.customer_id)
            .order_by(WebhookEndpoint.name)
            .limit(200)
        )
    )
    keys = list(
        db.session.execute(
            principal.scoped(
                db.select(ApiKey, User.name, Customer.name)
                .outerjoin(User, User.id == ApiKey.created_by_id)
                .outerjoin(Customer, Customer.id == ApiKey.customer_id),
                ApiKey.customer_id,
            )
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
            .limit(200)
        )
    )
    names = customers.names_of(e.customer_id for e in endpoint_rows)
    can_change = principal.allows(Role.OPERATOR)
    allow_forms = {
        key.id: AllowedIpsForm(formdata=None, allowed_ips=", ".join(key.allowed_ips or []))
        for key, _, _ in keys
        if not key.revoked_at and principal.can_change(key.customer_id)
    }
    if failed is not None:
        allow_forms[failed[0]] = failed[1]
    return (
        render_template(
            "admin/integrations/index.html",
            inbound=_inbound(),
            endpoints=endpoint_rows,
            customer_names=names,
            keys=keys,
            can_change=can_change,
            is_admin=current_user.has_role(Role.ADMIN),
            key_form=(key_form or _key_form(formdata=None)) if can_change else None,
            shown_key=shown_key,
            allow_forms=allow_forms,
            confirm=ConfirmForm(formdata=None),
        ),
        status,
    )


@bp.get("/integrations")
def integrations_page():
    # The team's wiring (Alertmanager receiver, token fingerprint, Twilio, API keys): not a customer's viewer's.
    tenancy.current().require(Role.OPERATOR)
    return _render()


@bp.post("/integrations/api-keys")
def api_key_create():
    tenancy.current().require(Role.OPERATOR)
    form = _key_form()
    if not form.validate_on_submit():
        return _render(key_form=form, status=422)
    customer = _chosen_customer(form.customer)
    scopes = list(SCOPES[: SCOPES.index(form.scope.data) + 1])  # a scope includes those below
    try:
        api_key, key = api_keys.create_key(
            name=form.name.data.strip(),
            scopes=scopes,
            customer=customer,
            expires_days=None,
            allowed_ips=form.allowed_ips.data,
            created_by=current_user,
        )
    except api_keys.KeyInputError as exc:
        db.session.rollback()
        form[exc.field].errors.append(exc.message)
        return _render(key_form=form, status=422)
    db.session.commit()
    flash(f"API key “{api_key.name}” created. Copy it now: it is shown only this once.", "success")
    return _render(shown_key=key)  # rendered, not redirected: the key never goes into the session cookie


def _changeable_key(key_id: int) -> ApiKey:
    api_key = db.session.get(ApiKey, key_id)
    if api_key is None:
        abort(404)
    tenancy.current().check_change(api_key.customer_id)
    return api_key


@bp.post("/integrations/api-keys/<int:key_id>/revoke")
def api_key_revoke(key_id: int):
    api_key = _changeable_key(key_id)
    if ConfirmForm().validate_on_submit():
        if api_keys.revoke(api_key, actor=current_user):
            db.session.commit()
            flash(f"API key “{api_key.name}” revoked: it no longer works.", "success")
        else:
            flash("This key was already revoked.", "info")
    return redirect(url_for("admin.integrations_page"))


@bp.post("/integrations/api-keys/<int:key_id>/allowed-ips")
def api_key_allowed_ips(key_id: int):
    api_key = _changeable_key(key_id)
    return save_allowed_ips(
        api_key,
        api_keys.set_allowed_ips,
        _render,
        saved=f"API key “{api_key.name}” is accepted",
        back=url_for("admin.integrations_page"),
    )


def save_allowed_ips(row, change: Callable, render: Callable, *, saved: str, back: str):
    """The allow-list form of a webhook source or an API key (`change`: its service's set_allowed_ips): saved,
    said and redirected to `back`; or the page rendered again, 422, with the message next to the field."""
    form = AllowedIpsForm()
    if form.validate_on_submit():
        try:
            changed = change(row, form.allowed_ips.data, actor=current_user)
        except ValueError as exc:  # the service's input error (SourceInputError, KeyInputError) names the network
            db.session.rollback()
            form.allowed_ips.errors.append(getattr(exc, "message", str(exc)))
        else:
            db.session.commit()
            if changed:
                flash(f"{saved} from {', '.join(row.allowed_ips) or 'any address'} from now on.", "success")
            else:
                flash("Nothing changed.", "info")
            return redirect(back)
    return render(failed=(row.id, form), status=422)


def _visible_endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        abort(404)
    tenancy.current().check_see(endpoint.customer_id)
    return endpoint


def _changeable_endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = _visible_endpoint(endpoint_id)
    tenancy.current().check_change(endpoint.customer_id)
    return endpoint


def _render_endpoint(endpoint: WebhookEndpoint | None, form: WebhookEndpointForm, *, secret=None, status=200):
    recent = []
    if endpoint is not None:
        recent = list(
            db.session.scalars(
                db.select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint.id)
                .order_by(WebhookDelivery.id.desc())
                .limit(RECENT_ATTEMPTS)
            )
        )
    return (
        render_template(
            "admin/integrations/endpoint.html",
            endpoint=endpoint,
            form=form,
            attempts=recent,
            secret=secret,
            can_change=tenancy.current().allows(Role.OPERATOR),
            watch=_watched(endpoint),
            confirm=ConfirmForm(formdata=None),
        ),
        status,
    )


def _watched(endpoint: WebhookEndpoint | None) -> int | None:
    """The test delivery (?watch=<id>) of this endpoint the page follows; None if it is not one."""
    watch = arg_id("watch")
    if endpoint is None or watch is None:
        return None
    return db.session.scalar(
        db.select(Notification.id).where(Notification.id == watch, Notification.webhook_endpoint_id == endpoint.id)
    )


@bp.post("/integrations/webhooks/<int:endpoint_id>/test")
def webhook_endpoint_test(endpoint_id: int):
    endpoint = _changeable_endpoint(endpoint_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("admin.webhook_endpoint_edit", endpoint_id=endpoint.id))
    notification = test_sends.webhook(endpoint=endpoint, actor=current_user)
    db.session.commit()
    flash("Test delivery queued.", "info")
    return redirect(url_for("admin.webhook_endpoint_edit", endpoint_id=endpoint.id, watch=notification.id))


@bp.route("/integrations/webhooks/new", methods=["GET", "POST"])
def webhook_endpoint_new():
    tenancy.current().require(Role.OPERATOR)
    form = _endpoint_form()
    if not form.validate_on_submit():
        return _render_endpoint(None, form, status=422 if form.is_submitted() else 200)
    customer = _chosen_customer(form.customer)
    endpoint, secret = endpoints.create_endpoint(
        customer=customer,
        name=form.name.data.strip(),
        url=form.url.data.strip(),
        event_types=form.event_types.data or [],
        is_active=form.is_active.data,
        actor=current_user,
    )
    db.session.commit()
    flash("Endpoint created. Copy its signing secret now: it is shown only this once.", "success")
    return _render_endpoint(endpoint, _endpoint_form(formdata=None, obj=endpoint), secret=secret)


@bp.route("/integrations/webhooks/<int:endpoint_id>", methods=["GET", "POST"])
def webhook_endpoint_edit(endpoint_id: int):
    endpoint = _visible_endpoint(endpoint_id)
    form = _endpoint_form(obj=endpoint, customer=str(endpoint.customer_id or ""))
    form.customer.render_kw = {"disabled": True}
    form.customer.validators = ()
    form.customer.data = str(endpoint.customer_id or "")
    if form.is_submitted():
        tenancy.current().check_change(endpoint.customer_id)
        if form.validate():
            changes = endpoints.update_endpoint(
                endpoint,
                name=form.name.data.strip(),
                url=form.url.data.strip(),
                event_types=form.event_types.data or [],
                is_active=form.is_active.data,
                actor=current_user,
            )
            db.session.commit()
            flash("Endpoint saved." if changes else "Nothing changed.", "success" if changes else "info")
            return redirect(url_for("admin.webhook_endpoint_edit", endpoint_id=endpoint.id))
        return _render_endpoint(endpoint, form, status=422)
    return _render_endpoint(endpoint, form)


@bp.post("/integrations/webhooks/<int:endpoint_id>/unpause")
def webhook_endpoint_unpause(endpoint_id: int):
    endpoint = _changeable_endpoint(endpoint_id)
    if ConfirmForm().validate_on_submit():
        if endpoints.unpause(endpoint, actor=current_user):
            db.session.commit()
            flash(f"“{endpoint.name}” unpaused: events will be sent to it again.", "success")
        else:
            flash("This endpoint was not paused.", "info")
    return redirect(url_for("admin.webhook_endpoint_edit", endpoint_id=endpoint.id))


@bp.post("/integrations/webhooks/<int:endpoint_id>/rotate-secret")
def webhook_endpoint_rotate(endpoint_id: int):
    endpoint = _changeable_endpoint(endpoint_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("admin.webhook_endpoint_edit", endpoint_id=endpoint.id))
    secret = endpoints.rotate_secret(endpoint, actor=current_user)
    db.session.commit()
    flash("New signing secret made; the old one no longer signs. Copy it now: it is shown only this once.", "success")
    form = _endpoint_form(formdata=None, obj=endpoint)
    form.customer.data = str(endpoint.customer_id or "")
    return _render_endpoint(endpoint, form, secret=secret)
