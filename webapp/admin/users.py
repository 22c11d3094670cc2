"""Users: list with search, create (password or invitation link), edit, deactivate, reset password."""

from __future__ import annotations

from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import or_
from sqlalchemy.orm import selectinload

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.forms import ConfirmForm, PasswordResetForm, UserCreateForm, UserEditForm
from webapp.admin.pager import keyset_page
from webapp.extensions import db
from webapp.models import Customer, Role, User
from webapp.security import role_required
from webapp.services.people import users
from webapp.services.people.users import UserError


def _customer_choices(form) -> dict[int, Customer]:
    everyone = tenancy.current().visible_customers()
    form.customers.choices = [(c.id, c.name) for c in everyone]
    return {c.id: c for c in everyone}


def _invite_url(user: User) -> str:
    return url_for("auth.invitation", token=users.invitation_token(user), _external=True)


def _shown_once(user: User, *, created: bool):
    """The link page: never cached, since the link is a credential."""
    response = make_response(
        render_template("admin/users/link.html", user=user, link=_invite_url(user), created=created)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/users")
@role_required(Role.ADMIN)
def user_list():
    search = request.args.get("q", "").strip()[:100]
    query = db.select(User).options(selectinload(User.phone_numbers), selectinload(User.customers))
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(User.email.like(pattern), User.name.ilike(pattern)))
    page = keyset_page(query, User.id, per_page=current_app.config["PER_PAGE"], descending=False)
    return render_template("admin/users/list.html", page=page, search=search)


@bp.route("/users/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def user_create():
    form = UserCreateForm()
    by_id = _customer_choices(form)
    if form.validate_on_submit():
        try:
            user = users.create(
                email=form.email.data,
                name=form.name.data,
                role=Role(form.role.data),
                customers=[by_id[i] for i in form.customers.data],
                password=form.password.data if form.access.data == "password" else None,
                by=current_user,
            )
        except UserError as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"User {user.email} created.", "success")
            if form.access.data == "invite":  # shown once, on this answer only
                return _shown_once(user, created=True)
            return redirect(url_for("admin.phone_list", user_id=user.id))
    return render_template("admin/users/form.html", form=form, user=None), 400 if form.errors else 200


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def user_edit(user_id: int):
    user = db.get_or_404(User, user_id)
    form = UserEditForm(obj=user)
    by_id = _customer_choices(form)
    if request.method == "GET":
        form.customers.data = [c.id for c in user.customers]
        form.role.data = user.role.value
    if form.validate_on_submit():
        try:
            changed = users.update(
                user,
                email=form.email.data,
                name=form.name.data,
                role=Role(form.role.data),
                customers=[by_id[i] for i in form.customers.data],
                by=current_user,
            )
        except UserError as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            db.session.commit()
            _keep_own_session(user)
            flash("User saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("admin.user_list"))
    return render_template(
        "admin/users/form.html", form=form, user=user, confirm=ConfirmForm()
    ), 400 if form.errors else 200


@bp.post("/users/<int:user_id>/deactivate")
@role_required(Role.ADMIN)
def user_deactivate(user_id: int):
    return _set_active(user_id, False)


@bp.post("/users/<int:user_id>/activate")
@role_required(Role.ADMIN)
def user_activate(user_id: int):
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool):
    user = db.get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        changed = users.set_active(user, active, by=current_user)
    except UserError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    db.session.commit()
    if changed:
        flash(f"{user.email} {'reactivated' if active else 'deactivated'}.", "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


def _keep_own_session(user: User) -> None:
    """An admin who changed their own account keeps this session (the others have ended)."""
    if user.id == current_user.id:
        login_user(user)


@bp.post("/users/<int:user_id>/sessions/end")
@role_required(Role.ADMIN)
def user_end_sessions(user_id: int):
    """Sign out of all sessions: every browser, remember-me cookie and API token of the user."""
    user = db.get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    users.end_sessions(user, why="signed out of all sessions by an admin", by=current_user)
    db.session.commit()
    if user.id == current_user.id:
        logout_user()
        flash("You are signed out of all sessions.", "info")
        return redirect(url_for("auth.login"))
    flash(f"{user.email} is signed out of all sessions.", "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def user_password(user_id: int):
    user = db.get_or_404(User, user_id)
    form = PasswordResetForm()
    if form.validate_on_submit():
        if form.access.data == "password":
            try:
                users.reset_password(user, password=form.password.data, by=current_user)
            except UserError as exc:
                form.password.errors.append(str(exc))
            else:
                db.session.commit()
                _keep_own_session(user)
                flash(f"Password of {user.email} changed; their other sessions are signed out.", "success")
                return redirect(url_for("admin.user_edit", user_id=user.id))
        else:
            users.record_link(user, by=current_user)
            db.session.commit()
            return _shown_once(user, created=False)
    return render_template("admin/users/password.html", form=form, user=user), 400 if form.errors else 200
