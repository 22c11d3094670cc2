"""Who is calling the JSON API: an API key or a signed user token, made into a tenancy.Principal (its powers
and customers, capped by its owner's), which tenancy.current() then answers for the request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps

from flask import current_app, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import Forbidden, Unauthorized

from webapp import tenancy
from webapp.extensions import db
from webapp.models import ApiKey, User, utcnow
from webapp.security import bearer_token, hash_api_key, require_address
from webapp.services.integrations.api_keys import KEY_PREFIX, new_key
from webapp.tenancy import Principal

__all__ = ["KEY_PREFIX", "api_required", "authenticate", "issue_token", "new_key", "rate_key"]

LAST_USED_RESOLUTION = timedelta(seconds=60)  # write last_used_at at most once a minute per key
TOKEN_SALT = "opsrelay-api-token"  # noqa: S105  (a namespace, not a secret)


class _Unauthorized(Unauthorized):
    def get_headers(self, environ=None, scope=None):
        return [*super().get_headers(environ, scope), ("WWW-Authenticate", 'Bearer realm="opsrelay-api"')]


def issue_token(user: User) -> tuple[str, int]:
    """A signed bearer token for `user` and its lifetime in seconds."""
    ttl = int(current_app.config["API_TOKEN_TTL_SECONDS"])
    claims = {"uid": user.id, "pw": user.password_hash[-12:], "sv": user.session_version}
    return _serializer().dumps(claims), ttl


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def _presented_credential() -> str | None:
    header = request.headers.get("X-API-Key", "").strip()
    if header:
        return header
    # ?api_key= is accepted as the seed does; the header is safer (URLs end up in logs)
    return bearer_token() or request.args.get("api_key", "").strip() or None


def authenticate() -> Principal:
    """The caller of this request, or 401 with a message that says what to send."""
    credential = _presented_credential()
    if not credential:
        raise _Unauthorized("Send an API key as 'X-API-Key: <key>' or 'Authorization: Bearer <key or token>'.")
    principal = _from_key(credential) if credential.startswith(KEY_PREFIX) else _from_token(credential)
    return tenancy.remember(principal)


def _from_key(key: str) -> Principal:
    api_key = db.session.scalar(db.select(ApiKey).where(ApiKey.key_hash == hash_api_key(key)))
    now = utcnow()
    if api_key is None or api_key.revoked_at is not None:
        raise _Unauthorized("This API key is not valid (unknown or revoked).")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise _Unauthorized("This API key has expired.")
    owner = db.session.get(User, api_key.created_by_id) if api_key.created_by_id else None
    if owner is not None and not owner.is_active:
        raise _Unauthorized("This API key belongs to a deactivated user.")
    require_address(api_key.allowed_ips or [], guard="api_key", what="this API key")
    _touch(api_key, now)
    return Principal.of_key(api_key, owner)


def _touch(api_key: ApiKey, now: datetime) -> None:
    """Record use without a write on every request: a conditional UPDATE at most once a minute."""
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    db.session.execute(
        db.update(ApiKey)
        .where(ApiKey.id == api_key.id)
        .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
    )
    db.session.commit()


def _from_token(token: str) -> Principal:
    ttl = int(current_app.config["API_TOKEN_TTL_SECONDS"])
    try:
        claims = _serializer().loads(token, max_age=ttl)
    except SignatureExpired:
        raise _Unauthorized("This token has expired; ask /api/v1/auth/token for a new one.") from None
    except BadSignature:
        raise _Unauthorized("This is neither a valid API key nor a valid token.") from None
    user = db.session.get(User, claims.get("uid")) if isinstance(claims, dict) else None
    if (
        user is None
        or not user.is_active
        or user.password_hash[-12:] != claims.get("pw")
        or user.session_version != claims.get("sv")
    ):
        raise _Unauthorized("This token's user is unknown, deactivated, changed their password or signed out.")
    return Principal.of_user(user)


def api_required(scope: str = "read") -> Callable:
    """Authenticate the caller (401) and require `scope` (403); the principal is tenancy.current()."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            principal = authenticate()
            if not principal.allows(scope):
                raise Forbidden(f"This needs the {scope!r} scope; {principal.label} has {principal.scope!r}.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def rate_key() -> str:
    """Rate limits count per API key or per user (token), per address for anonymous callers; no database."""
    from flask_limiter.util import get_remote_address

    credential = _presented_credential()
    if not credential:
        return "ip:" + (get_remote_address() or "-")
    if credential.startswith(KEY_PREFIX):
        return "key:" + hash_api_key(credential)[:24]
    try:
        claims = _serializer().loads(credential)
    except BadSignature:
        return "ip:" + (get_remote_address() or "-")
    return f"user:{claims.get('uid')}" if isinstance(claims, dict) else "ip:" + (get_remote_address() or "-")
