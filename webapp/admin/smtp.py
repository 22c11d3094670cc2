"""SMTP settings per customer: list, create, edit (password write-only) and Send test email.

The views parse the form and call webapp.services.integrations.smtp_configs, which applies the tenant
boundary, validates (the same checks and messages as the API's) and audits."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import joinedload

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.ops_forms import SmtpConfigForm, TestEmailForm, customer_choices
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.inputs import arg_id
from webapp.models import Customer, SmtpConfig
from webapp.services.delivery import test_sends
from webapp.services.integrations import smtp_configs
from webapp.services.integrations.smtp_configs import SMTP_CONFIG

LOADED = (joinedload(SmtpConfig.customer), joinedload(SmtpConfig.test_notification))


def _fixed_customer(form: SmtpConfigForm, config: SmtpConfig) -> None:
    """Settings stay with their customer: the field is shown, not submitted."""
    form.customer.choices = [(str(config.customer_id), config.customer.name)]
    form.customer.data = str(config.customer_id)
    form.customer.validators = ()
    form.customer.render_kw = {"disabled": True}


def _edit_page(config: SmtpConfig, form: SmtpConfigForm, *, test_form=None, watch=None):
    principal = tenancy.current()
    can_change = smtp_configs.may_change(principal, config)
    if test_form is None and can_change:
        test_form = TestEmailForm(formdata=None, to=principal.user.email)
    return render_template(
        "admin/smtp/edit.html", form=form, config=config, test_form=test_form, watch=watch, can_change=can_change
    )


@bp.get("/smtp")
def smtp_list():
    principal = tenancy.current()
    query = (
        db.select(SmtpConfig)
        .options(*LOADED)
        .join(Customer, Customer.id == SmtpConfig.customer_id)
        .order_by(Customer.name, SmtpConfig.name, SmtpConfig.id)
        .limit(500)
    )
    configs = list(db.session.scalars(smtp_configs.scoped(principal, query)))
    return render_template("admin/smtp/list.html", configs=configs, can_change=smtp_configs.may_change(principal))


@bp.route("/smtp/new", methods=["GET", "POST"])
def smtp_new():
    principal = tenancy.current()
    smtp_configs.require_writer(principal)
    form = SmtpConfigForm()
    form.customer.choices = customer_choices(principal)
    if form.validate_on_submit():
        try:
            config = smtp_configs.create(principal, {**form.payload(), "customer_id": int(form.customer.data)})
        except InvalidPayload as exc:
            form.show(exc)
        else:
            db.session.commit()
            flash(f"SMTP settings “{config.name}” saved for {config.customer.name}.", "success")
            return redirect(url_for("admin.smtp_edit", config_id=config.id))
    return render_template("admin/smtp/edit.html", form=form, config=None, test_form=None, watch=None)


@bp.route("/smtp/<int:config_id>", methods=["GET", "POST"])
def smtp_edit(config_id: int):
    principal = tenancy.current()
    config = smtp_configs.visible(principal, config_id, options=LOADED)
    if request.method == "GET":
        form = SmtpConfigForm(data=SMTP_CONFIG.form_data(SMTP_CONFIG.values_of(config)))
    else:
        form = SmtpConfigForm()
    _fixed_customer(form, config)
    if form.validate_on_submit():
        payload = form.payload()
        try:
            changes = smtp_configs.update(principal, config, payload)
        except InvalidPayload as exc:
            form.show(exc)
        else:
            db.session.commit()
            if changes.get("password") == "cleared" and not payload.get("password"):
                kept = " The server changed, so the stored password was cleared: enter it again."
            else:
                kept = "" if payload.get("password") else " The stored password was kept."
            flash("SMTP settings saved." + kept, "success" if "cleared" not in kept else "warning")
            return redirect(url_for("admin.smtp_edit", config_id=config.id))
    return _edit_page(config, form, watch=arg_id("watch"))


@bp.post("/smtp/<int:config_id>/test")
def smtp_test(config_id: int):
    principal = tenancy.current()
    config = smtp_configs.visible(principal, config_id, options=LOADED)
    principal.check_change(config.customer_id)
    test_form = TestEmailForm()
    if not test_form.validate_on_submit():
        form = SmtpConfigForm(formdata=None, data=SMTP_CONFIG.form_data(SMTP_CONFIG.values_of(config)))
        _fixed_customer(form, config)
        return _edit_page(config, form, test_form=test_form), 422
    notification = test_sends.email(
        customer=config.customer, to=test_form.to.data, actor=principal.user, smtp_config=config
    )
    db.session.commit()
    flash(f"Test email to {test_form.to.data} queued.", "info")
    return redirect(url_for("admin.smtp_edit", config_id=config.id, watch=notification.id))
