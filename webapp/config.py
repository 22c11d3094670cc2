"""Configuration from the environment: the only module that reads os.environ."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from webapp.pricing import parse_prices


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app; the message says why."""


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None


def _float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def _sms_prices() -> dict[str, int]:
    """SMS_PRICES laid over the default price table (webapp.pricing), in micros per segment."""
    try:
        return parse_prices(os.environ.get("SMS_PRICES"))
    except ValueError as exc:
        raise ConfigError(f"SMS_PRICES: {exc}") from None


def database_uri(url: str | None, instance_path: str) -> str:
    """DATABASE_URL as SQLAlchemy wants it; SQLite in instance/ without one."""
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "opsrelay.sqlite3")
    if url.startswith("postgres://"):  # Heroku's scheme
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _instance_secret(instance_path: str, name: str) -> str:
    """A random value kept in instance/<name> so it survives restarts (development only)."""
    path = Path(instance_path) / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


TWILIO_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER")
MAIL_DETAILS = ("MAIL_PORT", "MAIL_USE_TLS", "MAIL_USE_SSL", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_DEFAULT_SENDER")
EMAIL_BACKENDS = ("smtp", "console", "file")


def _set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def _check_twilio() -> None:
    """All Twilio settings or none (the console SMS backend): two of three is a mistake, not a choice. The
    sender is TWILIO_PHONE_NUMBER or TWILIO_MESSAGING_SERVICE_SID (either one)."""
    present = [name for name in TWILIO_SETTINGS if _set(name)]
    if _set("TWILIO_MESSAGING_SERVICE_SID") and "TWILIO_PHONE_NUMBER" not in present:
        present.append("TWILIO_PHONE_NUMBER")  # the service is the sender
    if present and len(present) < len(TWILIO_SETTINGS):
        missing = [name for name in TWILIO_SETTINGS if name not in present]
        raise ConfigError(
            f"Twilio is only partly configured: {', '.join(present)} set but {', '.join(missing)} missing. "
            "Set all three to send SMS, or none to simulate them (console backend)."
        )


def _check_mail() -> str | None:
    """The app's MAIL_* settings must describe one SMTP server; returns MAIL_SERVER (None if unset)."""
    server = os.environ.get("MAIL_SERVER", "").strip() or None
    details = [name for name in MAIL_DETAILS if _set(name)]
    if details and server is None:
        raise ConfigError(f"{', '.join(details)} set but MAIL_SERVER missing: set the server they belong to")
    if _set("MAIL_USERNAME") != _set("MAIL_PASSWORD"):
        missing = "MAIL_PASSWORD" if _set("MAIL_USERNAME") else "MAIL_USERNAME"
        raise ConfigError(f"MAIL_USERNAME and MAIL_PASSWORD go together: {missing} missing")
    if _bool("MAIL_USE_TLS") and _bool("MAIL_USE_SSL"):
        raise ConfigError("MAIL_USE_TLS (STARTTLS) and MAIL_USE_SSL (TLS from the start) exclude each other: set one")
    return server


def prometheus_multiproc_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR: where prometheus-client (which reads it itself) keeps each process's values."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _egress_allow() -> str:
    """EGRESS_ALLOW: networks and host names outgoing webhooks and SMTP may reach although not public."""
    from webapp.egress import AllowList

    value = os.environ.get("EGRESS_ALLOW", "").strip()
    try:
        AllowList.parse(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return value


def _alert_webhook_allowed_ips() -> list[str]:
    """ALERT_WEBHOOK_ALLOWED_IPS: the networks (CIDR) the Alertmanager token is accepted from; empty: anywhere."""
    from webapp.ip_allowlist import parse

    try:
        return parse(os.environ.get("ALERT_WEBHOOK_ALLOWED_IPS", ""))
    except ValueError as exc:
        raise ConfigError(f"ALERT_WEBHOOK_ALLOWED_IPS: {exc}") from None


def _trusted_proxies() -> int:
    """TRUSTED_PROXIES: how many proxies stand in front of the app (Heroku's router is one); 0 reads no
    X-Forwarded-For, so a sender cannot choose the address the allow-lists, rate limits and audit log see."""
    value = _int("TRUSTED_PROXIES", 0)
    if not 0 <= value <= 10:
        raise ConfigError(f"TRUSTED_PROXIES must be the number of proxies in front of OpsRelay (0 to 10), got {value}")
    return value


def from_environment(instance_path: str) -> dict:
    """Build the app config from the environment; raise ConfigError if it cannot run."""
    env = os.environ.get("OPSRELAY_ENV", "development").strip().lower()
    if env not in {"development", "production", "testing"}:
        raise ConfigError("OPSRELAY_ENV must be development, production or testing")
    production = env == "production"
    Path(instance_path).mkdir(parents=True, exist_ok=True)

    secret_key = os.environ.get("SECRET_KEY", "")
    alert_token = os.environ.get("ALERT_WEBHOOK_TOKEN", "")
    if production:
        missing = [
            name for name, value in (("SECRET_KEY", secret_key), ("ALERT_WEBHOOK_TOKEN", alert_token)) if not value
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} must be set in production (OPSRELAY_ENV=production); "
                "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
    else:
        secret_key = secret_key or _instance_secret(instance_path, "secret_key")
        alert_token = alert_token or _instance_secret(instance_path, "alert_webhook_token")

    _check_twilio()
    mail_server = _check_mail()
    email_backend = os.environ.get("EMAIL_BACKEND", "").strip().lower()
    if not email_backend:
        email_backend = "smtp" if production or mail_server else "console"  # a laptop needs no SMTP server
    if email_backend not in EMAIL_BACKENDS:
        raise ConfigError(f"EMAIL_BACKEND must be one of {', '.join(EMAIL_BACKENDS)}, got {email_backend!r}")
    log_format = os.environ.get("LOG_FORMAT", "json" if production else "text").strip().lower()
    if log_format not in {"json", "text"}:
        raise ConfigError(f"LOG_FORMAT must be json or text, got {log_format!r}")
    metrics_token = os.environ.get("METRICS_TOKEN") or None
    metrics_open = _bool("METRICS_OPEN")
    if production and not metrics_token and not metrics_open:
        raise ConfigError(
            "METRICS_TOKEN must be set in production (OPSRELAY_ENV=production) so /metrics is not open to "
            "anyone; set METRICS_OPEN=true to serve it without a token on purpose (a private network)"
        )

    return {
        "OPSRELAY_ENV": env,
        "LOG_FORMAT": log_format,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_uri(os.environ.get("DATABASE_URL"), instance_path),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "ALERT_WEBHOOK_TOKEN": alert_token,
        "ALERT_WEBHOOK_ALLOWED_IPS": _alert_webhook_allowed_ips(),
        "TRUSTED_PROXIES": _trusted_proxies(),
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "TWILIO_ACCOUNT_SID": os.environ.get("TWILIO_ACCOUNT_SID") or None,
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN") or None,
        "TWILIO_PHONE_NUMBER": os.environ.get("TWILIO_PHONE_NUMBER") or None,
        "TWILIO_API_BASE_URL": os.environ.get("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/"),
        "TWILIO_TIMEOUT": _int("TWILIO_TIMEOUT", 10),
        "TWILIO_MESSAGING_SERVICE_SID": os.environ.get("TWILIO_MESSAGING_SERVICE_SID") or None,
        # Pacing: Twilio's rate per sender (a long code: 1 message/s; a Messaging Service: its senders' sum).
        "TWILIO_MESSAGES_PER_SECOND": _float("TWILIO_MESSAGES_PER_SECOND", 1.0),
        "TWILIO_MESSAGING_SERVICE_MESSAGES_PER_SECOND": _float(
            "TWILIO_MESSAGING_SERVICE_MESSAGES_PER_SECOND", _float("TWILIO_MESSAGES_PER_SECOND", 1.0)
        ),
        "TWILIO_CALLS_PER_SECOND": _float("TWILIO_CALLS_PER_SECOND", 1.0),  # Twilio's CPS: per account, 1 by default
        "EMAIL_BACKEND": email_backend,
        "EMAIL_FILE_DIR": os.environ.get("EMAIL_FILE_DIR") or str(Path(instance_path) / "emails"),
        "MAIL_SERVER": mail_server or "localhost",
        "MAIL_PORT": _int("MAIL_PORT", 25),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS"),
        "MAIL_USE_SSL": _bool("MAIL_USE_SSL"),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "opsrelay@localhost"),
        "METRICS_TOKEN": metrics_token,
        "METRICS_OPEN": metrics_open,
        "DEFAULT_PHONE_REGION": os.environ.get("DEFAULT_PHONE_REGION", "US"),
        "SMTP_CA_FILE": os.environ.get("SMTP_CA_FILE") or None,
        "SMS_MAX_SEGMENTS": _int("SMS_MAX_SEGMENTS", 3),
        "SMS_PRICES": _sms_prices(),
        "SMS_CURRENCY": (os.environ.get("SMS_CURRENCY") or "USD").strip().upper(),
        "WEBHOOK_TIMEOUT": _float("WEBHOOK_TIMEOUT", 10.0),
        "SLACK_SIGNING_SECRET": os.environ.get("SLACK_SIGNING_SECRET") or None,
        "WEBHOOK_PAUSE_AFTER_FAILURES": _int("WEBHOOK_PAUSE_AFTER_FAILURES", 10),
        "DELIVERY_MAX_ATTEMPTS": _int("DELIVERY_MAX_ATTEMPTS", 5),
        "DELIVERY_BACKOFF_SECONDS": _float("DELIVERY_BACKOFF_SECONDS", 5.0),
        "DELIVERY_CONCURRENCY": _int("DELIVERY_CONCURRENCY", 16),  # provider calls in flight per worker process
        # Reliability: a claim's lease (renewed by the live worker), the recovery sweep's interval, and
        # how long a worker keeps retrying to write an outcome the provider already gave it.
        "DELIVERY_LEASE_SECONDS": _float("DELIVERY_LEASE_SECONDS", 20.0),
        "RECOVERY_SWEEP_SECONDS": _float("RECOVERY_SWEEP_SECONDS", 30.0),
        "OUTCOME_WRITE_RETRY_SECONDS": _float("OUTCOME_WRITE_RETRY_SECONDS", 60.0),
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "5 per minute"),
        "API_RATE_LIMIT": os.environ.get("API_RATE_LIMIT", "300 per minute"),
        "API_TOKEN_RATE_LIMIT": os.environ.get("API_TOKEN_RATE_LIMIT", "10 per minute"),
        # The third seed's limits, per API key: GET /api/v1/tickets and POST /api/v1/tickets.
        "API_TICKETS_LIST_RATE_LIMIT": os.environ.get("API_TICKETS_LIST_RATE_LIMIT", "10 per minute"),
        "API_TICKETS_CREATE_RATE_LIMIT": os.environ.get("API_TICKETS_CREATE_RATE_LIMIT", "5 per minute"),
        "EGRESS_ALLOW": _egress_allow(),
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
    }


class Defaults:
    """Settings that do not come from the environment."""

    SQLALCHEMY_ENGINE_OPTIONS: dict = {}  # disconnects: webapp/pool.py pings connections that sat idle
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    MAX_CONTENT_LENGTH = 1024 * 1024  # webhook and form bodies; 413 beyond
    WTF_CSRF_TIME_LIMIT = None
    RQ_INLINE = False  # tests: run jobs at enqueue time, in the request
    EMBEDDED_WORKER = True  # without REDIS_URL: run a worker thread in the web process
    RATELIMIT_HEADERS_ENABLED = True
    PER_PAGE = 50
    API_TOKEN_TTL_SECONDS = 3600  # /api/v1/auth/token bearer tokens
    WEBHOOK_TOLERANCE_SECONDS = 300  # generic webhooks: how far a signed timestamp may be from now
    INVITE_TTL_SECONDS = 7 * 24 * 3600  # invitation / password links shown to an admin
    PHONE_CODE_TTL_SECONDS = 10 * 60  # SMS verification codes
