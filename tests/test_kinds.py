"""The registries of kinds (webapp/models/kinds.py): an endpoint filtered on the page gets exactly what it
ticked, and every list of kinds the pages, the API and the OpenAPI document offer is the registry's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import load_fixture
from tests.webhook_receiver import Receiver
from webapp.admin import ops_forms
from webapp.admin.forms import PreferenceForm, TemplateNewForm
from webapp.admin.routing_forms import WebhookSourceForm
from webapp.extensions import db
from webapp.models import (
    EVENT_KINDS,
    EVENT_SOURCES,
    EVENT_TYPES,
    PERSONAL_CHANNELS,
    SENDER_EVENT_KINDS,
    SOURCE_KINDS,
    WEBHOOK_EVENTS,
    WEBHOOK_SOURCE_KINDS,
    Channel,
    Role,
    Ticket,
    WebhookEndpoint,
)
from webapp.services.integrations import api_keys
from webapp.sources import PARSERS

ALERT_HEADERS = {"Authorization": "Bearer test-alert-token"}


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver("set from the page"))
        return made[-1]

    yield make
    for receiver in made:
        receiver.stop()


def create_endpoint_on_the_page(client, receiver: Receiver, name: str, ticked: list[str]) -> WebhookEndpoint:
    """Fill the new-endpoint form as an admin would; the receiver learns the secret the page shows once."""
    assert client.get("/integrations/webhooks/new").status_code == 200
    page = client.post(
        "/integrations/webhooks/new",
        data={"customer": "", "name": name, "url": receiver.url, "event_types": ticked, "is_active": "y"},
    )
    assert page.status_code == 200, page.text
    receiver.secret = re.search(r'webhook-secret mb-0">(whsec_[^<]+)<', page.text).group(1)
    return db.session.scalar(db.select(WebhookEndpoint).where(WebhookEndpoint.name == name))


def post_alert(client, status: str) -> None:
    body = json.loads(load_fixture("webhooks/alertmanager_firing.json"))
    if status == "resolved":
        body["status"] = "resolved"
        body["alerts"] = [dict(body["alerts"][0], status="resolved", endsAt="2026-11-26T04:00:00Z")]
    response = client.post("/api/v1/webhooks/alertmanager", json=body, headers=ALERT_HEADERS)
    assert response.status_code == 200, response.text


def received(receiver: Receiver) -> list[tuple[str, str]]:
    """(X-OpsRelay-Event, the body's "event") of each signed request the receiver accepted, in name order."""
    return sorted((r["headers"]["X-OpsRelay-Event"], json.loads(r["body"])["event"]) for r in receiver.accepted)


def test_an_endpoint_filtered_on_the_page_receives_exactly_the_events_it_ticked(
    client, login_as, customer, receivers, drain
):
    login_as(Role.ADMIN)
    filtered_receiver, everything_receiver = receivers(), receivers()
    filtered = create_endpoint_on_the_page(
        client, filtered_receiver, "Ticket desk", ["ticket.created", "incident.resolved"]
    )
    create_endpoint_on_the_page(client, everything_receiver, "Archive", [])
    assert filtered.event_types == ["incident.resolved", "ticket.created"]
    page = client.get(f"/integrations/webhooks/{filtered.id}").text
    assert 'Sent: <span class="endpoint-events">incident.resolved, ticket.created</span>' in page
    assert "never sends" not in page

    post_alert(client, "firing")
    post_alert(client, "resolved")
    made = client.post(
        "/tickets/new",
        data={"customer": customer.id, "title": "Disk full on db-1", "priority": "high", "description": "97%"},
    )
    assert made.status_code == 302, made.text
    drain()

    assert received(filtered_receiver) == [
        ("incident.resolved", "incident.resolved"),
        ("ticket.created", "ticket.created"),
    ]
    assert filtered_receiver.rejected == 0
    assert received(everything_receiver) == [  # the event it did not tick did happen
        ("incident.resolved", "incident.resolved"),
        ("incident.triggered", "incident.triggered"),
        ("ticket.created", "ticket.created"),
    ]
    ticket = db.session.scalars(db.select(Ticket)).one()
    bodies = {json.loads(r["body"])["event"]: json.loads(r["body"]) for r in filtered_receiver.accepted}
    assert bodies["ticket.created"]["data"]["ticket_key"] == ticket.key
    assert bodies["incident.resolved"]["data"]["title"] == "DiskFull"
    assert bodies["incident.resolved"]["data"]["status"] == "resolved"


def test_a_filter_name_that_is_never_sent_is_shown_not_silent(client, login_as):
    login_as(Role.ADMIN)
    stale = WebhookEndpoint(
        name="Old filter", url="https://chat.example.com/h", secret_encrypted="x", event_types=["alert"]
    )
    mixed = WebhookEndpoint(
        name="Half old", url="https://chat.example.com/i", secret_encrypted="x", event_types=["alert", "ticket.created"]
    )
    db.session.add_all([stale, mixed])
    db.session.commit()
    page = client.get(f"/integrations/webhooks/{stale.id}").text
    assert "no event" in page
    assert "Its filter names alert, which OpsRelay never sends: nothing arrives for it." in page
    listing = client.get("/integrations").text
    assert "Its filter names alert, which OpsRelay never sends" in listing
    assert "ticket.created" in listing


def test_the_endpoint_form_refuses_a_name_delivery_does_not_send(client, login_as):
    login_as(Role.ADMIN)
    page = client.post(
        "/integrations/webhooks/new",
        data={"customer": "", "name": "x", "url": "https://chat.example.com/h", "event_types": ["alert"]},
    )
    assert page.status_code == 422 and "not a valid choice" in page.text
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookEndpoint)) == 0


def values(choices) -> list[str]:
    return [value for value, _label in choices if value != ""]


def test_every_form_offers_the_registry(app):
    with app.test_request_context():
        assert values(ops_forms.WebhookEndpointForm().event_types.choices) == list(WEBHOOK_EVENTS.names)
        delivery = ops_forms.DeliveryFilterForm()
        assert values(delivery.event_type.choices) == list(EVENT_TYPES)
        assert values(delivery.channel.choices) == [str(c) for c in Channel]
        assert values(WebhookSourceForm().kind.choices) == list(WEBHOOK_SOURCE_KINDS.names)
        template = TemplateNewForm()
        assert values(template.event_type.choices) == list(EVENT_TYPES)
        # a chat post is laid out from the event (Block Kit, Adaptive Card): no template to write for it
        assert values(template.channel.choices) == [str(c) for c in PERSONAL_CHANNELS if not c.chat]
        preference = PreferenceForm()
        assert values(preference.event_types.choices) == list(EVENT_TYPES)
        assert values(preference.enabled_channels.choices) == [str(c) for c in PERSONAL_CHANNELS]
        assert set(values(ops_forms.TestSendForm().channel.choices)) <= {str(c) for c in PERSONAL_CHANNELS}


def test_the_routing_preview_offers_every_source_kind(client, login_as):
    login_as(Role.OPERATOR)
    page = client.get("/routing/preview").text
    select = re.search(r'<select[^>]*name="source".*?</select>', page, re.S).group(0)
    assert re.findall(r'<option value="([^"]+)"', select) == list(SOURCE_KINDS.names)


def enums(node) -> list[list]:
    """Every "enum" list anywhere in an OpenAPI document."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "enum" and isinstance(value, list):
                found.append(value)
            else:
                found.extend(enums(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(enums(value))
    return found


def test_every_openapi_enum_of_a_kind_is_a_registry(client):
    document = client.get("/api/v1/openapi.json").json
    registries = {
        "event types": set(EVENT_TYPES),
        "event types senders may use": set(SENDER_EVENT_KINDS.names),
        "channels": {str(c) for c in Channel},
        "personal channels": {str(c) for c in PERSONAL_CHANNELS},
        "event sources": set(EVENT_SOURCES),
        "webhook events": set(WEBHOOK_EVENTS.names),
        "webhook source kinds": set(WEBHOOK_SOURCE_KINDS.names),
        "source kinds": set(SOURCE_KINDS.names),
    }
    kind_names = {"alert", "job_failed", "ticket_created", "sms", "webhook", "alertmanager", "pagerduty"}
    kind_names |= set(WEBHOOK_EVENTS.names)
    of_kinds = [set(e) for e in enums(document) if set(e) & kind_names]
    assert of_kinds, "the document lists no kind at all"
    for listed in of_kinds:
        assert listed in registries.values(), f"{sorted(listed)} is not a registry"
    assert set(EVENT_TYPES) in of_kinds and set(SENDER_EVENT_KINDS.names) in of_kinds
    assert set(EVENT_SOURCES) in of_kinds and {str(c) for c in PERSONAL_CHANNELS} in of_kinds
    assert set(SOURCE_KINDS.names) in of_kinds


def test_the_api_and_the_webhooks_validate_against_the_registry(client, make_user):
    owner = make_user(Role.ADMIN)
    _, plain = api_keys.create_key(name="t", scopes=["write"], customer=None, expires_days=None, created_by=owner)
    db.session.commit()
    headers = {"X-API-Key": plain}
    bad_filter = client.get("/api/v1/events?event_type=party", headers=headers)
    assert bad_filter.status_code == 400 and ", ".join(EVENT_TYPES) in bad_filter.json["error"]["message"]
    bad_source = client.get("/api/v1/events?source=fax", headers=headers)
    assert bad_source.status_code == 400 and ", ".join(EVENT_SOURCES) in bad_source.json["error"]["message"]
    for source in EVENT_SOURCES:
        assert client.get(f"/api/v1/events?source={source}", headers=headers).status_code == 200
    refused = client.post("/api/v1/events", json={"title": "x", "event_type": "ticket_created"}, headers=headers)
    assert refused.status_code == 422
    assert refused.json["error"]["fields"]["event_type"] == f"one of {SENDER_EVENT_KINDS.one_of()}"
    assert client.get("/api/v1/webhooks/test").json["sources"] == list(SOURCE_KINDS.names)


def test_each_source_kind_has_its_parser_and_route_and_each_event_type_its_webhook_name(app):
    posts = {rule.rule for rule in app.url_map.iter_rules() if "POST" in rule.methods}
    assert {f"/api/v1/webhooks/{name}" for name in SOURCE_KINDS.names} <= posts
    assert list(PARSERS) == list(SOURCE_KINDS.names)
    for kind in SOURCE_KINDS:
        module = __import__(f"webapp.sources.{kind.parser}", fromlist=["SOURCE"])
        assert kind.name == module.SOURCE and PARSERS[kind.name] is module.parse
    sent = {name for kind in EVENT_KINDS for name in (kind.webhook, kind.webhook_resolved, kind.webhook_acknowledged)}
    sent -= {None}
    assert sent == set(WEBHOOK_EVENTS.names)  # every name is sent by some event type, and none is made up
    assert {k.name for k in EVENT_KINDS if k.sla_severity} == {"sla_warning", "sla_breach"}


def test_the_readme_lists_the_names_delivery_sends():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Outgoing webhooks", 1)[1].split("The body is", 1)[0]
    assert re.findall(r"`([a-z]+\.[a-z_]+)`", section) == list(WEBHOOK_EVENTS.names)
