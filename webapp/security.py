"""Roles, secret comparison, key hashing, encryption at rest and IP allow-lists (tenant scope: webapp.tenancy)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from functools import lru_cache, wraps
from urllib.parse import urljoin, urlsplit

from cryptography.fernet import Fernet, InvalidToken
from flask import abort, current_app, request
from flask_login import current_user, login_required
from werkzeug.exceptions import Forbidden
from werkzeug.security import check_password_hash, generate_password_hash

from webapp import ip_allowlist, metrics
from webapp.models import Role


def role_required(role: Role) -> Callable:
    """Require login and at least `role`; 403 otherwise."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(role):
                abort(403, description=f"This needs the {role.value} role.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def constant_time_equals(given: str | bytes | None, expected: str | bytes | None) -> bool:
    if not given or not expected:
        return False
    if isinstance(given, str):
        given = given.encode()
    if isinstance(expected, str):
        expected = expected.encode()
    return hmac.compare_digest(given, expected)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_address(networks: Iterable[str], *, guard: str, what: str) -> None:
    """The IP allow-list check of every guard: 403 (JSON under /api/) unless the client's address is in
    `networks` (empty: anyone), counted by `guard` (webhook_source, alertmanager, api_key). The message names
    the address seen, so whoever set up the sender can tell which address to allow: `what` ends it."""
    address = ip_allowlist.client_address()
    if ip_allowlist.admits(networks, address):
        return
    metrics.allowlist_refusals.labels(guard=guard).inc()
    raise Forbidden(f"requests from {address or 'an unknown address'} are not allowed for {what}")


@lru_cache(maxsize=1)
def _dummy_password_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def password_matches(user, password: str) -> bool:
    """Whether `password` is `user`'s; for no user (an unknown email) a dummy hash is checked all the same, so
    the answer takes as long and says nothing of which emails have accounts."""
    if user is None:
        check_password_hash(_dummy_password_hash(), password)
        return False
    return user.check_password(password)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_safe_next(target: str | None) -> bool:
    """A 'next' URL that stays on this site (relative path, no scheme or host tricks)."""
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return False
    joined = urlsplit(urljoin(request.host_url, target))
    return (
        joined.scheme in {"http", "https"}
        and joined.netloc == urlsplit(request.host_url).netloc
        and (target.startswith("/") and not target.startswith("//"))
    )


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"opsrelay-secrets:" + current_app.config["SECRET_KEY"].encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("the stored secret cannot be decrypted with this SECRET_KEY") from None
