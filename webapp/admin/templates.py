"""Message templates: list, edit, per-customer override, and a live JSON preview."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.forms import ConfirmForm, TemplateForm, TemplateNewForm, TemplateOverrideForm
from webapp.admin.pager import keyset_page
from webapp.extensions import db
from webapp.models import EVENT_KINDS, PERSONAL_CHANNELS, Channel, Customer, MessageTemplate, Role
from webapp.security import role_required
from webapp.services.messages import template_admin
from webapp.services.people import customers

MAX_PREVIEW_CHARS = 100_000


def _template_or_404(template_id: int, *, change: bool = False) -> MessageTemplate:
    """A template the reader sees: its customers' own copies and the defaults (shared: tenancy)."""
    template = db.get_or_404(MessageTemplate, template_id)
    principal = tenancy.current()
    if change:
        principal.check_change(template.customer_id, shared=True)
    else:
        principal.check_see(template.customer_id, shared=True)
    return template


def _changeable_customers() -> list[Customer]:
    principal = tenancy.current()
    return principal.visible_customers() if principal.allows(Role.OPERATOR) else []


@bp.get("/templates")
def template_list():
    query = tenancy.current().scoped(db.select(MessageTemplate), MessageTemplate.customer_id, shared=True)
    event_type = request.args.get("event_type", "")
    if event_type in EVENT_KINDS:
        query = query.where(MessageTemplate.event_type == event_type)
    channel = request.args.get("channel", "")
    if channel in PERSONAL_CHANNELS:
        query = query.where(MessageTemplate.channel == channel)
    page = keyset_page(query, MessageTemplate.id, per_page=current_app.config["PER_PAGE"], descending=False)
    names = customers.names_of(t.customer_id for t in page.items)
    return render_template(
        "admin/templates/list.html",
        page=page,
        names=names,
        event_types=EVENT_KINDS,
        channels=PERSONAL_CHANNELS,
        event_type=event_type,
        channel=channel,
    )


@bp.route("/templates/new", methods=["GET", "POST"])
@role_required(Role.OPERATOR)
def template_create():
    form = TemplateNewForm()
    choices = [(c.id, c.name) for c in _changeable_customers()]
    if tenancy.current().can_change(None, shared=True):
        choices.insert(0, (0, "Every customer (default)"))
    form.customer_id.choices = choices
    if form.validate_on_submit():
        customer_id = form.customer_id.data or None
        tenancy.current().check_change(customer_id, shared=True)
        try:
            template = template_admin.create(
                event_type=form.event_type.data,
                channel=Channel(form.channel.data),
                customer_id=customer_id,
                by=current_user,
            )
        except template_admin.TemplateExists as exc:
            flash("That template exists already; here it is.", "info")
            return redirect(url_for("admin.template_edit", template_id=exc.existing.id))
        db.session.commit()
        flash("Template created with a starting text; edit it here.", "success")
        return redirect(url_for("admin.template_edit", template_id=template.id))
    return render_template("admin/templates/new.html", form=form), 400 if form.errors else 200


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
def template_edit(template_id: int):
    template = _template_or_404(template_id)
    form = TemplateForm(obj=template)
    if request.method == "POST":
        tenancy.current().check_change(template.customer_id, shared=True)
    if form.validate_on_submit():
        errors = {
            "body_text": template_admin.check(form.body_text.data, event_type=template.event_type),
            "subject": template_admin.check(form.subject.data or "", event_type=template.event_type),
            "body_html": template_admin.check(form.body_html.data or "", event_type=template.event_type, html=True),
        }
        for name, message in errors.items():
            if message:
                getattr(form, name).errors.append(message)
        if not any(errors.values()):
            changed = template_admin.save(
                template,
                subject=form.subject.data,
                body_text=form.body_text.data,
                body_html=form.body_html.data,
                by=current_user,
            )
            db.session.commit()
            flash("Template saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("admin.template_edit", template_id=template.id))
    can_change = tenancy.current().can_change(template.customer_id, shared=True)
    override_form = None
    if template.customer_id is None:
        choices = [(c.id, c.name) for c in _changeable_customers()]
        if choices:
            override_form = TemplateOverrideForm(formdata=None)
            override_form.customer_id.choices = choices
    customer = db.session.get(Customer, template.customer_id) if template.customer_id else None
    return render_template(
        "admin/templates/edit.html",
        template=template,
        form=form,
        can_change=can_change,
        can_preview=tenancy.current().allows(Role.OPERATOR),
        override_form=override_form,
        customer=customer,
        confirm=ConfirmForm(),
    ), 400 if form.errors else 200


@bp.post("/templates/<int:template_id>/override")
@role_required(Role.OPERATOR)
def template_override(template_id: int):
    default = _template_or_404(template_id)
    if default.customer_id is not None:
        abort(400, description="This is already a customer's template.")
    form = TemplateOverrideForm()
    form.customer_id.choices = [(c.id, c.name) for c in _changeable_customers()]
    if not form.validate_on_submit():
        abort(400, description="Pick one of your customers.")
    tenancy.current().check_change(form.customer_id.data)
    copy = template_admin.override(default, customer_id=form.customer_id.data, by=current_user)
    db.session.commit()
    flash("This customer now has its own copy; edit it here.", "success")
    return redirect(url_for("admin.template_edit", template_id=copy.id))


@bp.post("/templates/<int:template_id>/remove")
@role_required(Role.OPERATOR)
def template_remove(template_id: int):
    template = _template_or_404(template_id, change=True)
    if template.customer_id is None or not ConfirmForm().validate_on_submit():
        abort(400, description="Only a customer's own copy can be removed.")
    template_admin.remove_override(template, by=current_user)
    db.session.commit()
    flash("The customer uses the default template again.", "success")
    return redirect(url_for("admin.template_list"))


@bp.post("/templates/<int:template_id>/preview")
@role_required(Role.OPERATOR)  # running template code is for those who may write templates
def template_preview(template_id: int):
    """JSON: the template as typed, rendered with sample data, with SMS encoding and segments."""
    template = _template_or_404(template_id)
    fields = {name: request.form.get(name, "") for name in ("subject", "body_text", "body_html")}
    if any(len(value) > MAX_PREVIEW_CHARS for value in fields.values()):
        return jsonify(errors={"body_text": "Too long to preview."}), 422
    result = template_admin.preview(event_type=template.event_type, channel=template.channel, **fields)
    return jsonify(result)


# The HTML preview's own policy: its inline styles as recipients see them, and nothing else (no script, no request
# out, no form, an opaque origin); framed by this site's pages only.
PREVIEW_HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'"


@bp.post("/templates/<int:template_id>/preview.html")
@role_required(Role.OPERATOR)
def template_preview_html(template_id: int):
    """The HTML part as typed, rendered with sample data, as a page for the preview frame (form target)."""
    template = _template_or_404(template_id)
    fields = {name: request.form.get(name, "") for name in ("subject", "body_text", "body_html")}
    if any(len(value) > MAX_PREVIEW_CHARS for value in fields.values()):
        return "Too long to preview.", 422, {"Content-Type": "text/plain; charset=utf-8"}
    result = template_admin.preview(event_type=template.event_type, channel=template.channel, **fields)
    return (
        result.get("body_html") or "",
        200,
        {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": PREVIEW_HTML_CSP,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )
