"""Secrets at rest, key hashing and constant-time comparison."""

from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.models import AuditLog, Customer, SmtpConfig
from webapp.security import constant_time_equals, decrypt_secret, encrypt_secret, hash_api_key


def test_secrets_are_encrypted_at_rest_and_read_back(app):
    customer = Customer(name="Acme")
    config = SmtpConfig(customer=customer, host="smtp.example.com", from_email="ops@example.com")
    config.password_encrypted = encrypt_secret("hunter2-app-password")
    db.session.add(config)
    db.session.commit()
    stored = db.session.execute(db.text("SELECT password_encrypted FROM smtp_config")).scalar()
    assert "hunter2" not in stored
    assert decrypt_secret(stored) == "hunter2-app-password"


def test_a_secret_from_another_secret_key_is_a_clear_error(app, make_app):
    token = encrypt_secret("hunter2")
    other = make_app(SECRET_KEY="a-different-secret-key")
    with other.app_context(), pytest.raises(ValueError, match="cannot be decrypted with this SECRET_KEY"):
        decrypt_secret(token)


def test_api_keys_are_stored_as_hashes():
    assert hash_api_key("ops_abc") == hash_api_key("ops_abc")
    assert hash_api_key("ops_abc") != hash_api_key("ops_abd")
    assert "ops_abc" not in hash_api_key("ops_abc")


@pytest.mark.parametrize(
    ("given", "expected", "equal"),
    [
        ("token", "token", True),
        ("token", "tokem", False),
        ("", "token", False),
        (None, "token", False),
        ("x", "", False),
    ],
)
def test_constant_time_equals(given, expected, equal):
    assert constant_time_equals(given, expected) is equal


def test_creating_an_admin_is_audited(runner):
    runner.invoke(args=["users", "create-admin", "--email", "a@example.com", "--password", "longenough", "--name", "A"])
    entry = db.session.scalars(db.select(AuditLog)).one()
    assert (entry.action, entry.target_type) == ("user.create", "user")
    assert "longenough" not in str(entry.changes) + entry.summary
