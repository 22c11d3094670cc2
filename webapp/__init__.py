"""OpsRelay: the on-call notification hub. create_app() builds the Flask app."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp import config, errors, logs, pool
from webapp.extensions import csrf, db, limiter, login_manager, mail, migrate
from webapp.inputs import RowIdConverter


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder="../templates",
        static_folder="../static",
        instance_relative_config=True,
    )
    app.url_map.converters["int"] = RowIdConverter  # before any blueprint adds a rule
    app.config.from_object(config.Defaults)
    app.config.update(config.from_environment(app.instance_path))
    app.config.update(overrides or {})
    app.config.setdefault(
        "RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] if app.config.get("REDIS_URL") else "memory://"
    )
    if app.config.get("TRUSTED_PROXIES"):
        # The client's address from X-Forwarded-For, app-wide, so the IP allow-lists, the per-address rate
        # limits and the audit log all see the same one. Only the address: the scheme and host of links come
        # from PUBLIC_BASE_URL (Twilio signatures are checked against it), never from a header.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"], x_proto=0, x_host=0, x_port=0)
    if not app.config.get("TESTING"):
        logs.configure(as_json=app.config["LOG_FORMAT"] == "json")
    logs.init_app(app)

    _size_connection_pool(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"), render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            pool.install(engine)
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)

    from webapp import jobs, models, queue  # noqa: F401  (models: register every table)

    queue.init_app(app, periodic=jobs.PERIODIC_JOBS)
    app.extensions["opsrelay_sms"] = _sms_backend(app)

    from webapp.admin import bp as admin_bp
    from webapp.api import bp as api_bp
    from webapp.auth import bp as auth_bp
    from webapp.ops import bp as ops_bp
    from webapp.webhooks import bp as webhooks_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(api_bp)
    csrf.exempt(webhooks_bp)
    csrf.exempt(api_bp)  # no cookies: keys and bearer tokens only

    errors.register(app)
    from webapp import cli

    cli.register(app)
    app.before_request(errors.assign_request_id)
    app.after_request(_security_headers)
    return app


@login_manager.user_loader
def load_user(user_id: str):
    from webapp.models import User

    uid, _, version = user_id.partition(".")
    if not uid.isdigit() or not version.isdigit():  # a cookie from before session versions: sign in again
        return None
    user = db.session.get(User, int(uid))
    if user is None or not user.is_active or user.session_version != int(version):
        return None  # signed out everywhere, password changed, rights changed or deactivated since
    return user


def _size_connection_pool(app: Flask) -> None:
    """A worker's send pool holds up to DELIVERY_CONCURRENCY database connections at once (each row's outcome),
    besides the job's own, the lease keeper's and the scheduler's: keep that many open. SQLAlchemy's default
    keeps 5 and closes the rest as they come back, so every send opened a PostgreSQL connection (a backend
    started, authenticated and ended per message). A web process never opens more than its threads use."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return
    wanted = {"pool_size": app.config["DELIVERY_CONCURRENCY"] + 4}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**wanted, **app.config["SQLALCHEMY_ENGINE_OPTIONS"]}


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sms_backend(app: Flask):
    config = app.config
    sender = config["TWILIO_MESSAGING_SERVICE_SID"] or config["TWILIO_PHONE_NUMBER"]
    if config["TWILIO_ACCOUNT_SID"] and config["TWILIO_AUTH_TOKEN"] and sender:
        from webapp.channels.pacing import Pacer
        from webapp.channels.sms_twilio import TwilioSms
        from webapp.queue import get_queue

        service = config["TWILIO_MESSAGING_SERVICE_SID"]
        rate = config["TWILIO_MESSAGING_SERVICE_MESSAGES_PER_SECOND" if service else "TWILIO_MESSAGES_PER_SECOND"]
        return TwilioSms(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            from_number=config["TWILIO_PHONE_NUMBER"],
            messaging_service_sid=service,
            api_base_url=config["TWILIO_API_BASE_URL"],
            timeout=config["TWILIO_TIMEOUT"],
            pacer=Pacer(get_queue(app).connection, float(rate)),
            calls_pacer=Pacer(get_queue(app).connection, config["TWILIO_CALLS_PER_SECOND"]),
        )
    from webapp.channels.sms_console import ConsoleSms

    return ConsoleSms()


def _security_headers(response):
    if current_app.config["OPSRELAY_ENV"] == "production":  # served over HTTPS only: browsers remember it
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        # img-src data: for Bootstrap's own inline SVG icons (select arrows, ticks, the menu button)
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
        "object-src 'none'",
    )
    if has_request_context() and "request_id" in g:
        response.headers.setdefault("X-Request-ID", g.request_id)
    return response
