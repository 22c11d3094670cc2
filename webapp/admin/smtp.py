"""SMTP settings per customer: list, create, edit (password write-only) and Send test email."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from webapp.admin import bp, scope
from webapp.admin.ops_forms import SmtpConfigForm, TestEmailForm
from webapp.extensions import db
from webapp.models import Customer, SmtpConfig
from webapp.services.delivery import test_sends
from webapp.services.integrations import smtp_configs


def _visible_config(config_id: int) -> SmtpConfig:
    config = db.session.get(
        SmtpConfig, config_id, options=[joinedload(SmtpConfig.customer), joinedload(SmtpConfig.test_notification)]
    )
    if config is None:
        abort(404)
    scope.check_visible(config.customer_id)
    return config


def _values(form: SmtpConfigForm) -> dict:
    return {name: getattr(form, name).data for name in smtp_configs.FIELDS}


def _fixed_customer(form: SmtpConfigForm, config: SmtpConfig) -> None:
    """Settings stay with their customer: the field is shown, not submitted."""
    form.customer.choices = [(str(config.customer_id), config.customer.name)]
    form.customer.data = str(config.customer_id)
    form.customer.validators = ()
    form.customer.render_kw = {"disabled": True}


def _watch_id() -> int | None:
    value = request.args.get("watch", "")
    return int(value) if value.isdigit() and len(value) < 19 else None


@bp.get("/smtp")
def smtp_list():
    query = (
        db.select(SmtpConfig)
        .options(joinedload(SmtpConfig.customer), joinedload(SmtpConfig.test_notification))
        .join(Customer, Customer.id == SmtpConfig.customer_id)
        .order_by(Customer.name, SmtpConfig.name, SmtpConfig.id)
        .limit(500)
    )
    configs = list(db.session.scalars(scope.scoped(query, SmtpConfig.customer_id)))
    return render_template("admin/smtp/list.html", configs=configs, can_change=scope.can_change())


@bp.route("/smtp/new", methods=["GET", "POST"])
def smtp_new():
    if not scope.can_change():
        abort(403, description="Viewers can look but not change anything.")
    form = SmtpConfigForm()
    form.customer.choices = [(str(c.id), c.name) for c in scope.visible_customers()]
    if form.validate_on_submit():
        customer = db.session.get(Customer, int(form.customer.data))
        scope.check_can_change(customer.id)
        config = smtp_configs.save(
            None, customer=customer, values=_values(form), password=form.password.data, actor=current_user
        )
        db.session.commit()
        flash(f"SMTP settings “{config.name}” saved for {customer.name}.", "success")
        return redirect(url_for("admin.smtp_edit", config_id=config.id))
    return render_template("admin/smtp/edit.html", form=form, config=None, test_form=None, watch=None)


@bp.route("/smtp/<int:config_id>", methods=["GET", "POST"])
def smtp_edit(config_id: int):
    config = _visible_config(config_id)
    if request.method == "POST":
        scope.check_can_change(config.customer_id)
    form = SmtpConfigForm(obj=config if request.method == "GET" else None)
    _fixed_customer(form, config)
    if form.validate_on_submit():
        smtp_configs.save(
            config, customer=config.customer, values=_values(form), password=form.password.data, actor=current_user
        )
        db.session.commit()
        flash("SMTP settings saved." + ("" if form.password.data else " The stored password was kept."), "success")
        return redirect(url_for("admin.smtp_edit", config_id=config.id))
    test_form = TestEmailForm(formdata=None, to=current_user.email) if scope.can_change() else None
    return render_template(
        "admin/smtp/edit.html",
        form=form,
        config=config,
        test_form=test_form,
        watch=_watch_id(),
        can_change=scope.can_change(),
    )


@bp.post("/smtp/<int:config_id>/test")
def smtp_test(config_id: int):
    config = _visible_config(config_id)
    scope.check_can_change(config.customer_id)
    test_form = TestEmailForm()
    if not test_form.validate_on_submit():
        form = SmtpConfigForm(formdata=None, obj=config)
        _fixed_customer(form, config)
        return (
            render_template(
                "admin/smtp/edit.html", form=form, config=config, test_form=test_form, watch=None, can_change=True
            ),
            422,
        )
    notification = test_sends.email(
        customer=config.customer, to=test_form.to.data, actor=current_user, smtp_config=config
    )
    db.session.commit()
    flash(f"Test email to {test_form.to.data} queued.", "info")
    return redirect(url_for("admin.smtp_edit", config_id=config.id, watch=notification.id))
