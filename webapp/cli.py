"""Command-line tools: `flask users create-admin`, `flask jobs requeue`, `flask sla check`, `flask dev`."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.serving import run_simple

from webapp import jobs, logs
from webapp.extensions import db
from webapp.models import ApiKey, Role, User
from webapp.security import hash_api_key
from webapp.services.demo import seed
from webapp.services.integrations import api_keys
from webapp.services.people import phones, users
from webapp.services.people.phones import PhoneError
from webapp.services.people.users import UserError

users_cli = AppGroup("users", help="Manage users.")
jobs_cli = AppGroup("jobs", help="Background jobs.")
sla_cli = AppGroup("sla", help="Ticket SLAs.")
demo_cli = AppGroup("demo", help="Demo data.")

DEMO_PHONE = "+14155550100"  # 555-0100..0199 are reserved for fiction


def create_admin(*, email: str, password: str, name: str, phone: str | None) -> User:
    """Create an active admin through the users service (the pages' rules: a valid unused email, a name, a
    password of users.MIN_PASSWORD_LENGTH); UserError or PhoneError names the field. Caller commits."""
    user = users.create(email=email, name=name, role=Role.ADMIN, customers=[], password=password, by=None)
    if phone:
        phones.add(user, number=phone, label="Mobile", by=None)
    return user


def _ask(value: str | None, prompt: str, *, hide: bool = False, required: bool = True) -> str | None:
    if value is not None:
        return value
    if not sys.stdin.isatty():
        if required:
            raise click.UsageError(f"--{prompt.lower().split()[0]} is required when not run in a terminal")
        return None
    return click.prompt(prompt, hide_input=hide, confirmation_prompt=hide, default=None if required else "")


@users_cli.command("create-admin")
@click.option("--email")
@click.option("--password")
@click.option("--name")
@click.option("--phone", help="E.164, or national format in DEFAULT_PHONE_REGION")
def create_admin_command(email, password, name, phone):
    """Create an admin account (prompts for what is missing when run in a terminal)."""
    email = _ask(email, "Email")
    name = _ask(name, "Name")
    password = _ask(password, "Password", hide=True)
    phone = _ask(phone, "Phone (optional)", required=False) or None
    try:
        user = create_admin(email=email, password=password, name=name, phone=phone)
    except (UserError, PhoneError) as exc:
        db.session.rollback()
        field = "phone" if isinstance(exc, PhoneError) else exc.field
        raise click.ClickException(f"{field}: {exc}") from None
    db.session.commit()
    click.echo(f"Created admin {user.email} (id {user.id}).")


@jobs_cli.command("requeue")
def requeue_command():
    """Re-queue notifications the queue lost (the periodic recovery job, run now)."""
    click.echo(jobs.recover_notifications())


def development_api_key(app: Flask) -> str:
    """The development API key: the one in instance/dev_api_key while it still works, else a new one."""
    path = Path(app.instance_path) / "dev_api_key"
    if path.exists():
        plain = path.read_text().strip()
        key = db.session.scalar(db.select(ApiKey).where(ApiKey.key_hash == hash_api_key(plain)))
        if key is not None and api_keys.status(key) == "active":
            return plain
    admin = db.session.scalar(db.select(User).where(User.role == Role.ADMIN, User.is_active.is_(True)).limit(1))
    _, plain = api_keys.create_key(
        name="development (flask dev)", scopes=["admin"], customer=None, expires_days=None, created_by=admin
    )
    db.session.commit()
    path.write_text(plain + "\n")
    path.chmod(0o600)
    return plain


@sla_cli.command("check")
def sla_check_command():
    """Warn, breach and escalate what is due now (the periodic sweep, run by hand)."""
    outcome = jobs.check_sla()
    click.echo(f"SLA sweep: {outcome['summary']}")
    for label, keys in (("warned", outcome["warned"]), ("breached", outcome["breached"])):
        if keys:
            click.echo(f"  {label}: {', '.join(keys)}")
    if outcome["escalated"]:
        click.echo(f"  escalated: {', '.join(outcome['escalated'])}")


@demo_cli.command("seed")
@click.option("--force", is_flag=True, help="Add the demo team even though the database has data.")
def demo_seed_command(force: bool):
    """Fill an empty database with a realistic team: customers, people, a week of alerts, tickets, heartbeats."""
    if seed.has_data() and not force:
        raise click.ClickException("The database already has customers, events or tickets; add --force to seed anyway.")
    done = seed.seed()
    db.session.commit()
    click.echo(f"Seeded {done.summary()}.")
    click.echo(f"Sign in as {done.users[0].email} (admin) or any other demo user with password {seed.PASSWORD}")


DEV_EGRESS_ALLOW = "127.0.0.0/8, ::1, localhost"


@click.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def dev_command(host: str, port: int):
    """Migrate, create the first admin if there is none, and serve with the embedded worker."""
    from flask_migrate import upgrade

    app: Flask = current_app._get_current_object()
    upgrade()
    logs.configure(as_json=app.config["OPSRELAY_ENV"] == "production")  # Alembic's fileConfig replaced ours
    db.session.remove()
    base = f"http://{host}:{port}"
    if db.session.scalar(db.select(User.id).where(User.role == Role.ADMIN).limit(1)) is None:
        password = secrets.token_urlsafe(12)
        # With the console SMS backend nothing is sent, so the first admin gets a fictional 555-01xx
        # number and the example alert below produces a (simulated) SMS to look at.
        simulated = app.extensions["opsrelay_sms"].simulated
        phone = DEMO_PHONE if simulated else None
        create_admin(email="admin@example.com", password=password, name="First Admin", phone=phone)
        db.session.commit()
        click.secho("\n  First admin created — this password is shown only once:", fg="green", bold=True)
        click.echo(f"    open {base}/login\n    email    admin@example.com\n    password {password}")
        if phone:
            click.echo(f"    phone    {phone} (fictional; SMS are simulated until TWILIO_* are set)")
        click.echo("")
    else:
        click.echo(
            f"\n  Log in at {base}/login with your admin account (`flask --app webapp users create-admin` adds one).\n"
        )
    if app.config["OPSRELAY_ENV"] != "production":
        if not app.config.get("EGRESS_ALLOW"):  # a laptop's own SMTP catcher and webhook receivers
            app.config["EGRESS_ALLOW"] = DEV_EGRESS_ALLOW
            click.echo(f"  Outgoing webhooks and SMTP may reach loopback here (EGRESS_ALLOW={DEV_EGRESS_ALLOW}).")
        key = development_api_key(app)
        click.echo("  Development API key (admin scope; kept in instance/dev_api_key):")
        click.echo(f"    curl -H 'X-API-Key: {key}' {base}/api/v1/auth/verify")
        click.echo(f"    API reference: {base}/api/docs\n")
    token = app.config["ALERT_WEBHOOK_TOKEN"]
    click.echo("  Fire a test alert (the simulated SMS shows in this log and on the dashboard):")
    click.echo(
        f"    curl -X POST {base}/api/v1/webhooks/alertmanager -H 'Authorization: Bearer {token}' \\\n"
        '      -H \'Content-Type: application/json\' -d \'{"alerts": [{"status": "firing", '
        '"startsAt": "\'"$(date -u +%FT%TZ)"\'",\n'
        '      "labels": {"alertname": "TestAlert", "severity": "critical", "service": "test", '
        '"instance": "test-1"},\n'
        '      "annotations": {"summary": "Test alert", "description": "Testing"}}]}\'\n'
    )
    queue = app.extensions["opsrelay_queue"]
    if queue.embedded:
        queue.ensure_embedded_worker()
    else:
        click.echo("  REDIS_URL is set: start `python worker.py` beside this server to deliver notifications.\n")
    run_simple(host, port, app, use_reloader=False, use_debugger=False, threaded=True)


def register(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(sla_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(dev_command)
