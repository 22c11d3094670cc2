"""flask users create-admin, flask jobs requeue."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

from webapp.extensions import db
from webapp.models import Role, User


def test_create_admin_non_interactive(runner):
    result = runner.invoke(
        args=[
            "users", "create-admin", "--email", "Ops@Example.com", "--password", "correct horse",
            "--name", "Olivia Ops", "--phone", "(415) 555-0123",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created admin ops@example.com" in result.output
    user = db.session.scalars(db.select(User)).one()
    assert (user.email, user.name, user.role, user.is_active) == ("ops@example.com", "Olivia Ops", Role.ADMIN, True)
    assert user.check_password("correct horse")
    assert user.password_hash != "correct horse"
    assert [(p.number, p.is_primary) for p in user.phone_numbers] == [("+14155550123", True)]


def test_created_admin_can_log_in(runner, client):
    runner.invoke(
        args=["users", "create-admin", "--email", "a@example.com", "--password", "s3cret-pass", "--name", "A"]
    )
    response = client.post("/login", data={"email": "a@example.com", "password": "s3cret-pass"})
    assert response.status_code == 302


def test_create_admin_refuses_an_invalid_phone_number(runner):
    result = runner.invoke(
        args=["users", "create-admin", "--email", "a@example.com", "--password", "longenough", "--name", "A",
              "--phone", "+1 555 12"]
    )  # fmt: skip
    assert result.exit_code == 1
    assert "phone:" in result.output and "not" in result.output
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def test_create_admin_refuses_a_duplicate_email_short_password_or_bad_email(runner, make_user):
    make_user("viewer", email="taken@example.com")
    cases = [
        (["--email", "taken@example.com", "--password", "longenough"], "already exists"),
        (["--email", "new@example.com", "--password", "short"], "at least 10 characters"),
        (["--email", "not-an-email", "--password", "longenough"], "email:"),
    ]
    for args, message in cases:
        result = runner.invoke(args=["users", "create-admin", "--name", "N", *args])
        assert result.exit_code == 1, args
        assert message in result.output
    assert db.session.scalar(db.select(db.func.count(User.id))) == 1


def test_create_admin_without_a_terminal_says_what_is_missing(runner):
    result = runner.invoke(args=["users", "create-admin", "--email", "a@example.com"], input="")
    assert result.exit_code == 2
    assert "is required" in result.output


def test_jobs_requeue_reports_what_it_did(runner):
    result = runner.invoke(args=["jobs", "requeue"])
    assert result.exit_code == 0
    assert "'requeued': 0" in result.output


def run_in_terminal(args: list[str], answers: list[tuple[str, str]], env: dict) -> str:
    """Run a command on a pseudo-terminal, answering each prompt as it appears; return all it printed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, with the pty as its terminal
        os.chdir(Path(__file__).resolve().parent.parent)
        os.execve(sys.executable, [sys.executable, *args], env)  # noqa: S606
    output = b""
    deadline = time.monotonic() + 30
    pending = list(answers)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if pending and pending[0][0].encode() in output.rsplit(b"\n", 1)[-1]:
                os.write(fd, pending.pop(0)[1].encode() + b"\n")
    finally:
        os.waitpid(pid, 0)
        os.close(fd)
    return output.decode(errors="replace")


def test_create_admin_prompts_for_what_is_missing_in_a_terminal(app, database):
    env = {**os.environ, "DATABASE_URL": database["uri"], "SECRET_KEY": "secret-for-tests"}
    output = run_in_terminal(
        ["-m", "flask", "--app", "webapp", "users", "create-admin", "--email", "tty@example.com"],
        [
            ("Name:", "Terry Terminal"),
            ("Password:", "typed-in-secret"),
            ("Repeat for confirmation:", "typed-in-secret"),
            ("Phone (optional)", "+1 415 555 0199"),
        ],
        env,
    )
    assert "Created admin tty@example.com" in output, output
    assert "typed-in-secret" not in output  # the password is not echoed
    db.session.expire_all()
    user = db.session.scalars(db.select(User).where(User.email == "tty@example.com")).one()
    assert user.name == "Terry Terminal" and user.check_password("typed-in-secret")
    assert [p.number for p in user.phone_numbers] == ["+14155550199"]
