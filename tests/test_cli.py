"""flask users create-admin, flask jobs requeue."""

from __future__ import annotations

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
        (["--email", "new@example.com", "--password", "short"], "at least 8 characters"),
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
