"""Login and logout."""

from __future__ import annotations

import logging

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from webapp import metrics
from webapp.auth import bp
from webapp.auth.forms import LoginForm, LogoutForm, SetPasswordForm
from webapp.extensions import db, limiter
from webapp.models import User, utcnow
from webapp.security import is_safe_next, password_matches
from webapp.services.people import users

log = logging.getLogger(__name__)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _failed(response) -> bool:
    """Only failed attempts count against the limit."""
    return response.status_code != 302


def _email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
@limiter.limit(_login_limit, methods=["POST"], key_func=_email_key, deduct_when=_failed)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(db.select(User).where(User.email == email))
        if not password_matches(user, form.password.data) or not user.is_active:
            log.info("failed login for user %s", user.id if user else "unknown")
            metrics.login_failures.inc()
            flash("Invalid email or password.", "danger")
            return render_template("auth/login.html", form=form), 401
        login_user(user, remember=form.remember.data)
        user.last_login_at = utcnow()
        db.session.commit()
        target = request.args.get("next")
        return redirect(target if is_safe_next(target) else url_for("admin.dashboard"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    if LogoutForm().validate_on_submit():
        users.end_sessions(current_user, why="signed out (every session ends)")
        db.session.commit()
        logout_user()
        flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def invitation(token: str):
    """Set a password from an invitation or reset link (signed, expiring, single-use)."""
    user = users.user_from_invitation(token)
    if user is None:
        return render_template("auth/invitation_invalid.html"), 404
    form = SetPasswordForm()
    if form.validate_on_submit():
        users.reset_password(user, password=form.password.data, by=None)
        db.session.commit()
        logout_user()
        flash("Your password is set. Sign in with it now.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/invitation.html", form=form, user=user), 400 if form.errors else 200
