"""Users: create, edit, deactivate, passwords and invitation links."""

from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache
from pathlib import Path

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from webapp.extensions import db
from webapp.models import Customer, Role, User
from webapp.services import audit
from webapp.validation import normalise_email

INVITE_SALT = "opsrelay-invite"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 500


class UserError(ValueError):
    """A change refused; `field` names the form field the message belongs next to."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def _email_taken(email: str, *, except_id: int | None = None) -> bool:
    query = db.select(User.id).where(User.email == email)
    if except_id is not None:
        query = query.where(User.id != except_id)
    return db.session.scalar(query.limit(1)) is not None


COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")
_LEET = str.maketrans("0134578@$!|+", "oieastbasilt")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _stems(password: str) -> set[str]:
    """The password, and what is left of it without digits and symbols at its ends, as typed and de-leeted."""
    ends = "0123456789!@#$%^&*()_+-=.,;:?/\\|~'\" "
    lowered = password.lower()
    stripped = lowered.strip(ends)
    stems = {lowered, stripped, stripped.translate(_LEET), lowered.translate(_LEET).strip(ends)}
    return {stem for stem in stems if stem}


def check_password_strength(password: str, *, email: str | None = None) -> None:
    """At least MIN_PASSWORD_LENGTH characters, not a common password (the bundled list, also with digits,
    symbols or leetspeak added around it), not one character or a short pattern repeated, not the email's
    name; UserError saying which."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"Use at least {MIN_PASSWORD_LENGTH} characters.", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"Use at most {MAX_PASSWORD_LENGTH} characters.", field="password")
    if _stems(password) & _common_passwords():
        raise UserError(
            "This password is too common: it is on the list of passwords attackers try first. "
            "Choose a phrase of a few unrelated words.",
            field="password",
        )
    if len(set(password.lower())) < 4:
        raise UserError("This password repeats too few characters; choose a phrase of a few words.", field="password")
    name = (email or "").partition("@")[0].lower()
    if len(name) >= 4 and name in password.lower():
        raise UserError("Do not build the password from the email address.", field="password")


def _checked_identity(email: str, name: str) -> tuple[str, str]:
    """The normalised email and name, or UserError naming the field."""
    try:
        email = normalise_email(email)
    except ValueError as exc:
        raise UserError(str(exc), field="email") from None
    if not name or not name.strip():
        raise UserError("Give the user a name.", field="name")
    return email, name.strip()


def create(
    *, email: str, name: str, role: Role, customers: list[Customer], password: str | None, by: User | None
) -> User:
    """A new user with `password`, or (None) with an unusable one until they follow an invitation link.
    The pages, the API and `flask users create-admin` all create users here."""
    email, name = _checked_identity(email, name)
    if _email_taken(email):
        raise UserError(f"{email} already has an account (a user with that email already exists).", field="email")
    user = User(email=email, name=name.strip(), role=role, is_active=True, customers=list(customers))
    if password:
        check_password_strength(password, email=email)
        user.set_password(password)
    else:
        user.set_password(secrets.token_urlsafe(32))  # nobody knows it: the invitation sets the real one
    db.session.add(user)
    db.session.flush()
    audit.record(
        actor=by,
        action="user.create",
        target=user,
        summary=f"created {role.value} {email}" + ("" if password else " (invited)"),
        changes={"role": role.value, "customers": sorted(c.id for c in customers)},
    )
    return user


def end_sessions(user: User, *, why: str, by: User | None = None) -> None:
    """Every session, remember-me cookie and API token of `user` stops working (they must sign in again).

    Called at logout, password change or reset, role or customer change and deactivation; `why` is audited.
    """
    user.session_version = User.session_version + 1  # one UPDATE: concurrent bumps are not lost
    db.session.flush()
    audit.record(actor=by or user, action="user.sessions_ended", target=user, summary=f"{user.email}: {why}")


def update(user: User, *, email: str, name: str, role: Role, customers: list[Customer], by: User) -> dict:
    email, name = _checked_identity(email, name)
    if _email_taken(email, except_id=user.id):
        raise UserError(f"{email} already has an account (a user with that email already exists).", field="email")
    if user.id == by.id and role != user.role:
        raise UserError("You cannot change your own role.", field="role")
    changes: dict = {}
    for attr, value in (("email", email), ("name", name.strip()), ("role", role)):
        old = getattr(user, attr)
        if old != value:
            changes[attr] = [str(old), str(value)]
            setattr(user, attr, value)
    old_ids = sorted(c.id for c in user.customers)
    new_ids = sorted(c.id for c in customers)
    if old_ids != new_ids:
        changes["customers"] = [old_ids, new_ids]
        user.customers = list(customers)
    if changes:
        db.session.flush()
        audit.record(actor=by, action="user.update", target=user, summary=f"edited {user.email}", changes=changes)
        if {"role", "customers"} & changes.keys():
            end_sessions(user, why="role or customers changed", by=by)
    return changes


def set_active(user: User, active: bool, *, by: User) -> bool:
    if user.id == by.id and not active:
        raise UserError("You cannot deactivate yourself.")
    if user.is_active == active:
        return False
    user.is_active = active
    db.session.flush()
    action = "user.activate" if active else "user.deactivate"
    audit.record(actor=by, action=action, target=user, summary=f"{action.split('.')[1]}d {user.email}")
    if not active:
        end_sessions(user, why="deactivated", by=by)
    return True


def reset_password(user: User, *, password: str, by: User | None) -> None:
    check_password_strength(password, email=user.email)
    user.set_password(password)
    db.session.flush()
    actor = by or user
    audit.record(actor=actor, action="user.password", target=user, summary=f"password set for {user.email}")
    end_sessions(user, why="password changed", by=actor)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=INVITE_SALT)


def _password_fingerprint(user: User) -> str:
    """Changes whenever the password does: a used link stops working."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def invitation_token(user: User) -> str:
    """A signed link token to set a password; expires after INVITE_TTL_SECONDS and once used."""
    return _serializer().dumps({"u": user.id, "p": _password_fingerprint(user)})


def user_from_invitation(token: str) -> User | None:
    """The active user a valid, unexpired, unused token belongs to; None otherwise."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["INVITE_TTL_SECONDS"])
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    user = db.session.get(User, data["u"])
    if user is None or not user.is_active or data.get("p") != _password_fingerprint(user):
        return None
    return user


def record_link(user: User, *, by: User) -> None:
    audit.record(actor=by, action="user.password_link", target=user, summary=f"password link made for {user.email}")
