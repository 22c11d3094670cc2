"""Test sends: an SMS or a phone call to a number, or an email to an address, watched as it moves along."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.ops_forms import TestSendForm, customer_choices
from webapp.extensions import db
from webapp.inputs import arg_id
from webapp.models import Channel, Customer, Notification, Role
from webapp.security import role_required
from webapp.services.delivery import test_sends


def _fill_from_last_send(form: TestSendForm, notification_id: int, principal: tenancy.Principal) -> None:
    """The form keeps the caller's own last test send (customer, channel, recipient, message): send it again."""
    sent = db.session.get(Notification, notification_id)
    if sent is None or sent.event_id is not None or not principal.is_self(sent.user_id):
        return  # not a test send of theirs
    if not principal.can_see(sent.customer_id):
        return
    form.customer.data = str(sent.customer_id)
    form.channel.data = str(sent.channel)
    form.to.data = sent.recipient
    if sent.channel in (Channel.SMS, Channel.VOICE) and sent.body not in (
        test_sends.DEFAULT_SMS,
        test_sends.DEFAULT_CALL,
    ):
        form.message.data = sent.body


@bp.route("/test-sends", methods=["GET", "POST"])
@role_required(Role.OPERATOR)
def test_send():
    principal = tenancy.current()
    form = TestSendForm(region=current_app.config["DEFAULT_PHONE_REGION"])
    form.customer.choices = customer_choices(principal)
    if request.method == "GET" and len(form.customer.choices) == 1:
        form.customer.data = form.customer.choices[0][0]
    watch = arg_id("watch")
    if request.method == "GET" and watch is not None:
        _fill_from_last_send(form, watch, principal)
    if form.validate_on_submit():
        customer = db.session.get(Customer, int(form.customer.data))
        principal.check_change(customer.id)
        channel = Channel(form.channel.data)
        send = {Channel.SMS: test_sends.sms, Channel.VOICE: test_sends.call}.get(channel, test_sends.email)
        notification = send(customer=customer, to=form.to.data, actor=current_user, message=form.message.data)
        db.session.commit()
        flash(f"Test {'SMS' if channel == Channel.SMS else channel.label} queued.", "info")
        return redirect(url_for("admin.test_send", watch=notification.id))
    return render_template(
        "admin/test_sends/form.html",
        form=form,
        watch=watch,
        sms_simulated=current_app.extensions["opsrelay_sms"].simulated,
    )
