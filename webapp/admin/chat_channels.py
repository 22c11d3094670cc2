"""A customer's chat channels (Slack, Microsoft Teams): list, add, edit (URL write-only), delete, test post.

The views parse the form and call webapp.services.integrations.chat_channels, which applies the tenant
boundary, validates and audits; the test post goes through the delivery path like any notification."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from wtforms import SelectField
from wtforms.validators import InputRequired

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.forms import ConfirmForm
from webapp.admin.menu import MENU, MenuItem
from webapp.admin.ops_forms import customer_choices
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.inputs import arg_id
from webapp.models import ChatChannel, Customer, Role
from webapp.services.delivery import test_sends
from webapp.services.integrations import chat_channels
from webapp.services.integrations.chat_channels import CHAT_CHANNEL

MENU.append(MenuItem("admin.chat_channel_list", "Chat channels", Role.OPERATOR, "Integrations"))


class ChatChannelForm(CHAT_CHANNEL.form("ChatChannelFields")):
    """The chat channel page: the fields of CHAT_CHANNEL (checked by the service), and whose channel."""

    customer = SelectField("Customer", choices=[], validators=[InputRequired(message="Pick a customer.")])
    inputs = {"customer_id": "customer"}


def _fixed_customer(form: ChatChannelForm, row: ChatChannel) -> None:
    """A channel stays with its customer: the field is shown, not submitted."""
    customer = db.session.get(Customer, row.customer_id)
    form.customer.choices = [(str(row.customer_id), customer.name)]
    form.customer.data = str(row.customer_id)
    form.customer.validators = ()
    form.customer.render_kw = {"disabled": True}


def _page(row: ChatChannel | None, form: ChatChannelForm, *, watch: int | None = None):
    principal = tenancy.current()
    can_change = chat_channels.may_change(principal, row)
    return render_template(
        "admin/chat_channels/edit.html",
        form=form,
        row=row,
        customer=db.session.get(Customer, row.customer_id) if row else None,
        url_state=chat_channels.url_hint(row) if row else None,
        can_change=can_change,
        confirm=ConfirmForm(),
        watch=watch,
    )


@bp.get("/chat-channels")
def chat_channel_list():
    principal = tenancy.current()
    query = (
        db.select(ChatChannel, Customer.name)
        .join(Customer, Customer.id == ChatChannel.customer_id)
        .order_by(Customer.name, ChatChannel.name, ChatChannel.id)
        .limit(500)
    )
    customer_id = arg_id("customer")
    if customer_id is not None:
        query = query.where(ChatChannel.customer_id == customer_id)
    rows = [
        (row, name, chat_channels.url_hint(row))
        for row, name in db.session.execute(chat_channels.scoped(principal, query))
    ]
    return render_template("admin/chat_channels/list.html", rows=rows, can_change=chat_channels.may_change(principal))


@bp.route("/chat-channels/new", methods=["GET", "POST"])
def chat_channel_new():
    principal = tenancy.current()
    chat_channels.require_writer(principal)
    form = ChatChannelForm()
    form.customer.choices = customer_choices(principal)
    if form.validate_on_submit():
        try:
            row = chat_channels.create(principal, {**form.payload(), "customer_id": int(form.customer.data)})
        except InvalidPayload as exc:
            form.show(exc)
        else:
            db.session.commit()
            flash(f"Chat channel “{row.name}” added.", "success")
            return redirect(url_for("admin.chat_channel_edit", chat_channel_id=row.id))
    return _page(None, form), 400 if form.errors or form.form_errors else 200


@bp.route("/chat-channels/<int:chat_channel_id>", methods=["GET", "POST"])
def chat_channel_edit(chat_channel_id: int):
    principal = tenancy.current()
    row = chat_channels.visible(principal, chat_channel_id)
    if request.method == "GET":
        form = ChatChannelForm(data=CHAT_CHANNEL.form_data(CHAT_CHANNEL.values_of(row)))
    else:
        form = ChatChannelForm()
    _fixed_customer(form, row)
    if form.validate_on_submit():
        payload = form.payload()
        try:
            chat_channels.update(principal, row, payload)
        except InvalidPayload as exc:
            form.show(exc)
        else:
            db.session.commit()
            kept = "" if payload.get("webhook_url") else " The stored webhook URL was kept."
            flash("Chat channel saved." + kept, "success")
            return redirect(url_for("admin.chat_channel_edit", chat_channel_id=row.id))
    return _page(row, form, watch=arg_id("watch")), 400 if form.errors or form.form_errors else 200


@bp.post("/chat-channels/<int:chat_channel_id>/delete")
def chat_channel_delete(chat_channel_id: int):
    principal = tenancy.current()
    row = chat_channels.visible(principal, chat_channel_id)
    principal.check_change(row.customer_id)
    if ConfirmForm().validate_on_submit():
        name = row.name
        chat_channels.delete(principal, row)
        db.session.commit()
        flash(f"Chat channel “{name}” deleted.", "success")
    return redirect(url_for("admin.chat_channel_list"))


@bp.post("/chat-channels/<int:chat_channel_id>/test")
def chat_channel_test(chat_channel_id: int):
    principal = tenancy.current()
    row = chat_channels.visible(principal, chat_channel_id)
    principal.check_change(row.customer_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("admin.chat_channel_edit", chat_channel_id=row.id))
    notification = test_sends.chat(channel=row, actor=principal.user)
    db.session.commit()
    flash(f"Test post to {row.name} queued.", "info")
    return redirect(url_for("admin.chat_channel_edit", chat_channel_id=row.id, watch=notification.id))
