"""/api/v1/openapi.json describes the API (checked by schemathesis against the running app); /api/docs."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import _reset
from webapp.extensions import db
from webapp.models import (
    Customer,
    Event,
    Incident,
    Notification,
    NotificationPreference,
    Role,
    SmtpConfig,
    User,
    open_key,
    utcnow,
)
from webapp.security import encrypt_secret
from webapp.services.integrations import api_keys

EXAMPLES = 15  # per operation: keeps the whole run well under a minute
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def seed_rows(customer: Customer, admin: User) -> None:
    """One row of each listed resource, so list answers have items for the schema check to read."""
    now = utcnow()
    event = Event(
        source="api",
        dedup_key="seed",
        status="firing",
        severity="high",
        title="Seed",
        created_at=now,
        customer_id=customer.id,
        labels={"a": "b"},
        data={"job_url": None},
    )
    incident = Incident(
        customer_id=customer.id,
        source="api",
        key="seed",
        open_key=open_key("api", customer.id, "seed"),
        title="Seed",
        labels={"a": "b"},
        severity="high",
        severity_rank=3,
    )
    db.session.add_all([event, incident])
    db.session.flush()
    event.incident_id = incident.id
    db.session.add_all(
        [
            Notification(
                event_id=event.id,
                user_id=admin.id,
                customer_id=customer.id,
                channel="sms",
                status="sent",
                recipient="+14155550101",
                created_at=now,
                updated_at=now,
                sent_at=now,
            ),
            SmtpConfig(
                customer_id=customer.id,
                host="smtp.example.com",
                from_email="noc@example.com",
                password_encrypted=encrypt_secret("pw"),
            ),
            NotificationPreference(user_id=admin.id, customer_id=None),
        ]
    )


@pytest.fixture
def fuzzed_app(make_app, database):
    """An app with generous rate limits (the fuzzer's requests must reach the views) and some rows."""
    app = make_app(API_RATE_LIMIT="100000 per minute", API_TOKEN_RATE_LIMIT="100000 per minute")
    with app.app_context():
        _reset(database["seeds"])
        customer = Customer(name="Acme Corp")
        admin = User(email="root@example.com", name="Root", role=Role.ADMIN, customers=[customer])
        admin.set_password("pw-for-tests")
        db.session.add_all([customer, admin])
        db.session.flush()
        for n in range(3):  # ids 1-3, which the fuzzer aims at (and may revoke): not the key it uses
            api_keys.create_key(name=f"decoy {n}", scopes=["read"], customer=None, expires_days=None, created_by=admin)
        _, plain = api_keys.create_key(
            name="fuzz", scopes=["admin"], customer=None, expires_days=None, created_by=admin
        )
        seed_rows(customer, admin)
        db.session.commit()
        app.config["FUZZ_KEY"] = plain
        yield app
        db.session.remove()
        db.engine.dispose()


def test_api_answers_as_documented(fuzzed_app):
    """Every operation, with bounded generated examples: no 5xx, statuses, types and bodies as documented."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed_app)
    headers = {"X-API-Key": fuzzed_app.config["FUZZ_KEY"]}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    seen = []

    for operation in operations:
        if operation.method.upper() == "GET" and not operation.path_parameters:
            case = operation.Case(query={})  # the bare list, which the seeded rows fill
            seen.append((operation.label, case.call_and_validate(headers=headers, checks=CHECKS).status_code))

        @given(case=operation.as_strategy(), ident=st.one_of(st.none(), st.integers(1, 3)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case, ident):
            if ident is not None:  # aim at rows that exist as often as at ones that do not
                case.path_parameters = {name: ident for name in case.path_parameters or {}}
                if isinstance(case.body, dict):
                    case.body.update({k: 1 for k in ("customer_id", "user_id") if k in case.body})
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            seen.append((case.operation.label, response.status_code))

        run()
    answered = {label for label, status in seen if status < 300}
    assert len(answered) >= 12, sorted(answered)  # the fuzzer reached the views, not only the front door


def test_document_collects_every_api_module(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"] == "3.1.0"
    for path in (
        "/api/v1/auth/api-keys",
        "/api/v1/auth/token",
        "/api/v1/events",
        "/api/v1/notifications",
        "/api/v1/smtp/{config_id}/test-email",
        "/api/v1/preferences/mine",
        "/api/v1/webhooks/pagerduty",
        "/api/v1/webhooks/test",
    ):
        assert path in document["paths"], path
    assert (
        "header is safer" in document["info"]["description"] or "prefer the header" in document["info"]["description"]
    )


def test_every_api_route_is_documented(app, client):
    documented = set(client.get("/api/v1/openapi.json").json["paths"])
    routes = {
        rule.rule.replace("<int:", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and not rule.rule.startswith("/api/v1/webhooks/twilio")
    }
    renamed = set()
    for route in routes:  # path parameter names differ only in spelling: compare the shapes
        renamed.add(route.split("{")[0])
    assert renamed <= {path.split("{")[0] for path in documented}


def test_docs_page_serves_swagger_ui_from_our_static_files(client, login_as):
    assert client.get("/api/docs").status_code == 302  # login first
    login_as(Role.VIEWER)
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/js/api-docs.js").status_code == 200
