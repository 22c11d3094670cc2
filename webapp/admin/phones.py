"""Phone numbers of a user: add, label, primary, verify by SMS code, opt-out. Admins, or the user."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.forms import ConfirmForm, PhoneCodeForm, PhoneForm, PhoneLabelForm
from webapp.extensions import db
from webapp.models import PhoneNumber, User
from webapp.services.people import phones
from webapp.services.people.phones import PhoneError


def _owner_or_admin(user_id: int) -> User:
    """The person whose numbers these are: 404 if the reader does not see them, 403 unless it is them or an admin
    (tenancy: a person's own rows)."""
    user = db.get_or_404(User, user_id)
    tenancy.current().check_change_person(user, what="phone numbers")
    return user


def _phone(phone_id: int) -> PhoneNumber:
    phone = db.get_or_404(PhoneNumber, phone_id)
    _owner_or_admin(phone.user_id)
    if not ConfirmForm().validate_on_submit():  # the CSRF token of whichever form was posted
        abort(400)
    return phone


def _back(phone_or_user) -> object:
    user_id = phone_or_user.user_id if isinstance(phone_or_user, PhoneNumber) else phone_or_user.id
    return redirect(url_for("admin.phone_list", user_id=user_id))


def _page(user: User, form=None, code_form=None, code_phone_id=None, status=200):
    return render_template(
        "admin/phones/list.html",
        user=user,
        form=form or PhoneForm(formdata=None),
        code_form=code_form or PhoneCodeForm(formdata=None),
        code_phone_id=code_phone_id,
        label_form=PhoneLabelForm(formdata=None),
        confirm=ConfirmForm(),
    ), status


@bp.get("/users/<int:user_id>/phones")
def phone_list(user_id: int):
    return _page(_owner_or_admin(user_id))


@bp.post("/users/<int:user_id>/phones")
def phone_add(user_id: int):
    user = _owner_or_admin(user_id)
    form = PhoneForm()
    if form.validate_on_submit():
        try:
            phone = phones.add(user, number=form.number.data, label=form.label.data, by=current_user)
        except PhoneError as exc:
            form.number.errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"{phone.number} added.", "success")
            return _back(user)
    return _page(user, form=form, status=400)


@bp.post("/phones/<int:phone_id>/label")
def phone_label(phone_id: int):
    phone = _phone(phone_id)
    form = PhoneLabelForm()
    if form.validate_on_submit():
        phones.relabel(phone, label=form.label.data, by=current_user)
        db.session.commit()
        flash("Label saved.", "success")
    else:
        flash("A label needs 1 to 40 characters.", "danger")
    return _back(phone)


@bp.post("/phones/<int:phone_id>/primary")
def phone_primary(phone_id: int):
    phone = _phone(phone_id)
    phones.make_primary(phone, by=current_user)
    db.session.commit()
    flash(f"{phone.number} is now the primary number.", "success")
    return _back(phone)


@bp.post("/phones/<int:phone_id>/remove")
def phone_remove(phone_id: int):
    phone = _phone(phone_id)
    user = phone.user
    phones.remove(phone, by=current_user)
    db.session.commit()
    flash("Number removed.", "success")
    return _back(user)


@bp.post("/phones/<int:phone_id>/send-code")
def phone_send_code(phone_id: int):
    phone = _phone(phone_id)
    if phone.opted_out:
        flash("This number has opted out of SMS; it must opt back in (reply START) first.", "danger")
        return _back(phone)
    try:
        phones.start_verification(phone, by=current_user)
    except PhoneError as exc:
        flash(str(exc), "warning")
        return _back(phone)
    db.session.commit()
    flash(f"A code is on its way to {phone.number}. Type it below.", "success")
    return _back(phone)


@bp.post("/phones/<int:phone_id>/verify")
def phone_verify(phone_id: int):
    phone = _phone(phone_id)
    form = PhoneCodeForm()
    if form.validate_on_submit():
        try:
            phones.confirm(phone, form.code.data, by=current_user)
        except PhoneError as exc:
            db.session.commit()  # the wrong try counts
            form.code.errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"{phone.number} is verified.", "success")
            return _back(phone)
    return _page(phone.user, code_form=form, code_phone_id=phone.id, status=400)


@bp.post("/phones/<int:phone_id>/opt-out")
def phone_opt_out(phone_id: int):
    return _opt(phone_id, True)


@bp.post("/phones/<int:phone_id>/opt-in")
def phone_opt_in(phone_id: int):
    return _opt(phone_id, False)


def _opt(phone_id: int, opted_out: bool):
    phone = _phone(phone_id)
    phones.set_opt_out(phone, opted_out, via=f"admin page ({current_user.email})", by=current_user)
    db.session.commit()
    flash(f"{phone.number} {'will get no SMS' if opted_out else 'gets SMS again'}.", "success")
    return _back(phone)
