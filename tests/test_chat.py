"""Chat channels: Slack (Block Kit) and Microsoft Teams (Adaptive Card) posts received by a loopback incoming
webhook, a person's own chat webhook from their preferences, the egress policy, retries, the admin pages (the
URL never shown back), and Slack's signed Acknowledge button."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from tests.conftest import _reset, twilio_settings
from tests.routing_helpers import fire
from tests.test_write_paths import read_form
from tests.webhook_receiver import Receiver
from webapp.extensions import db
from webapp.models import (
    AuditLog,
    Channel,
    ChatChannel,
    Incident,
    IncidentState,
    Notification,
    NotificationPreference,
    Role,
)
from webapp.models import NotificationStatus as S
from webapp.security import decrypt_secret
from webapp.services.routing import chat

SIGNING_SECRET = "slack-signing-secret-for-tests"
BASE = "https://opsrelay.example.com"


@pytest.fixture
def app(make_app, database, twilio):
    app = make_app(**twilio_settings(twilio.base_url), SLACK_SIGNING_SECRET=SIGNING_SECRET, PUBLIC_BASE_URL=BASE)
    with app.app_context():
        _reset(database["seeds"])
        yield app
        db.session.remove()


@pytest.fixture
def slack_hook():
    server = Receiver()  # an incoming webhook: nothing signed, the URL is the credential
    yield server
    server.stop()


@pytest.fixture
def teams_hook():
    server = Receiver()
    yield server
    server.stop()


def add_channel(client, customer, *, kind: str, url: str, name: str, min_severity: str = "high"):
    data = {"customer": str(customer.id), "kind": kind, "name": name, "webhook_url": url}
    data.update({"min_severity": min_severity, "enabled": "y"})
    return client.post("/chat-channels/new", data=data)


def chat_rows() -> list[Notification]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            db.select(Notification)
            .where(Notification.channel.in_((Channel.SLACK, Channel.TEAMS)))
            .order_by(Notification.id)
        )
    )


def posted(receiver: Receiver) -> list[dict]:
    return [json.loads(request["body"]) for request in receiver.accepted]


def slack_request(payload: dict, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict:
    """The form-encoded body and headers Slack sends for a click, signed as Slack signs."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "data": body,
        "content_type": "application/x-www-form-urlencoded",
        "headers": {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": stamp},
    }


def click(
    incident_id: int,
    *,
    email: str | None = None,
    username: str = "alice",
    response_url: str = "https://hooks.slack.com/actions/T0001/1/xyz",
) -> dict:
    user = {"id": "U024BE7LH", "username": username, "name": username, "team_id": "T0001"}
    if email:
        user["email"] = email
    return {
        "type": "block_actions",
        "user": user,
        "actions": [
            {"action_id": "acknowledge", "block_id": "b", "type": "button", "value": f"incident:{incident_id}"}
        ],
        "response_url": response_url,
    }


def test_slack_and_teams_messages_reach_a_loopback_receiver_with_the_right_shape(
    client, login_as, customer, slack_hook, teams_hook, drain
):
    login_as(Role.ADMIN)
    assert add_channel(client, customer, kind="slack", url=slack_hook.url, name="#ops-alerts").status_code == 302
    assert add_channel(client, customer, kind="teams", url=teams_hook.url, name="Ops team").status_code == 302
    event = fire(
        customer=customer,
        source="alertmanager",
        title="DiskFull",
        severity="critical",
        labels={"alertname": "DiskFull", "instance": "db-1:9100", "job": "node", "team": "storage"},
    )
    low = fire(customer=customer, source="alertmanager", title="CpuBusy", severity="low")
    drain()

    incident_id = event.incident_id
    assert incident_id is not None
    link = f"{BASE}/incidents/{incident_id}"
    [slack] = posted(slack_hook)
    assert slack["text"] == "CRITICAL · DiskFull"
    header, section, actions = slack["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert "CRITICAL" in header["text"]["text"] and "DiskFull" in header["text"]["text"]
    assert section["type"] == "section" and f"<{link}|DiskFull>" in section["text"]["text"]
    fields = [f["text"] for f in section["fields"]]
    assert "*Severity*\ncritical" in fields and "*Customer*\nAcme Corp" in fields
    assert "*instance*\ndb-1:9100" in fields and "*job*\nnode" in fields
    assert not any("storage" in f for f in fields)  # only the labels people triage by
    assert actions["type"] == "actions"
    open_button, ack_button = actions["elements"]
    assert open_button["url"] == link and open_button["text"]["text"] == "Open in OpsRelay"
    assert ack_button["action_id"] == "acknowledge" and ack_button["text"]["text"] == "Acknowledge"
    assert ack_button["value"] == f"incident:{incident_id}"

    [teams] = posted(teams_hook)
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    texts = [block.get("text") for block in card["body"] if block["type"] == "TextBlock"]
    assert any("CRITICAL" in t and "DiskFull" in t for t in texts)
    [facts] = [block["facts"] for block in card["body"] if block["type"] == "FactSet"]
    assert {"title": "Customer", "value": "Acme Corp"} in facts and {"title": "Severity", "value": "critical"} in facts
    assert {"title": "instance", "value": "db-1:9100"} in facts
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in OpsRelay", "url": link}]

    rows = {(n.event_id, str(n.channel)): n for n in chat_rows()}
    assert rows[(event.id, "slack")].status == S.SENT and rows[(event.id, "teams")].status == S.SENT
    assert rows[(event.id, "slack")].recipient == "#ops-alerts"  # the channel's name; its URL is a secret
    skipped = rows[(low.id, "slack")]
    assert skipped.status == S.SUPPRESSED
    assert skipped.reason.startswith("below the minimum severity of chat channel '#ops-alerts'")
    assert len(slack_hook.accepted) == 1 and len(teams_hook.accepted) == 1  # the low one was not posted


def test_a_person_gets_their_own_slack_posts_once_they_turn_it_on(
    client, make_user, login_as, customer, slack_hook, drain
):
    user = make_user(Role.OPERATOR)
    other = login_as(Role.OPERATOR)
    page = read_form(client.get("/preferences").text, "/preferences")
    assert "slack" not in page.values["enabled_channels"]  # off by default
    data = dict(page.values)
    data["enabled_channels"] = [*page.values["enabled_channels"], "slack"]
    data["slack_webhook_url"] = slack_hook.url
    assert client.post("/preferences", data=data).status_code == 302
    shown = client.get("/preferences").text
    assert slack_hook.url not in shown and f"set, ending …{slack_hook.url[-4:]}" in shown
    pref = db.session.scalar(db.select(NotificationPreference).where(NotificationPreference.user_id == other.id))
    assert decrypt_secret(pref.slack_webhook_url_encrypted) == slack_hook.url  # encrypted at rest

    event = fire(customer=customer, source="alertmanager", title="ApiDown", severity="critical")
    drain()
    mine = [n for n in chat_rows() if n.event_id == event.id]
    assert [(n.user_id, str(n.channel), n.status) for n in mine] == [(other.id, "slack", S.SENT)]
    assert user.id not in {n.user_id for n in mine}  # never turned on: no row, no post
    [body] = posted(slack_hook)
    assert body["blocks"][0]["text"]["text"].endswith("CRITICAL · ApiDown")


def test_an_enabled_chat_channel_without_a_url_is_suppressed_with_the_reason(client, login_as, customer):
    user = login_as(Role.OPERATOR)
    db.session.add(NotificationPreference(user_id=user.id, enabled_channels=["web", "teams"]))
    db.session.commit()
    event = fire(customer=customer, source="alertmanager", severity="critical")
    [row] = [n for n in chat_rows() if n.event_id == event.id]
    assert (row.channel, row.status) == (Channel.TEAMS, S.SUPPRESSED)
    assert row.reason == "no Microsoft Teams webhook URL: set one in the notification preferences"


def test_addresses_the_egress_policy_refuses_are_refused_on_save_and_on_send(
    app, client, login_as, customer, slack_hook, drain
):
    login_as(Role.ADMIN)
    page = add_channel(client, customer, kind="slack", url="http://169.254.169.254/latest/meta-data", name="#x")
    assert page.status_code == 400 and "blocked by the egress policy" in page.text
    assert add_channel(client, customer, kind="slack", url="ftp://hooks.example.com/x", name="#x").status_code == 400
    assert db.session.scalar(db.select(db.func.count(ChatChannel.id))) == 0

    assert add_channel(client, customer, kind="slack", url=slack_hook.url, name="#ops").status_code == 302
    app.config["EGRESS_ALLOW"] = ""  # loopback is no longer allowed: the stored URL is now refused
    fire(customer=customer, source="alertmanager", severity="critical")
    drain()
    [row] = chat_rows()
    assert row.status == S.FAILED and row.attempts == 1  # never retried
    assert row.error_code == "egress" and "blocked by the egress policy" in row.error_message
    assert slack_hook.requests == 0


def test_server_errors_are_retried_and_client_errors_fail_at_once(app, client, login_as, customer, slack_hook, drain):
    login_as(Role.ADMIN)
    add_channel(client, customer, kind="slack", url=slack_hook.url, name="#ops")
    slack_hook.fail_next(503)
    fire(customer=customer, source="alertmanager", severity="critical")
    drain()
    for _ in range(20):  # the retry is scheduled a moment later
        [row] = chat_rows()
        if row.status == S.SENT:
            break
        time.sleep(0.2)
        drain()
    assert row.status == S.SENT and row.attempts == 2 and len(slack_hook.accepted) == 1

    slack_hook.fail_next(404)  # Slack's "no_service": the webhook was removed
    fire(customer=customer, source="alertmanager", severity="critical", title="Other")
    drain()
    row = chat_rows()[-1]
    assert row.status == S.FAILED and row.attempts == 1 and row.error_code == "404"


def test_the_url_is_never_shown_back_and_the_pages_keep_it_when_left_empty(client, login_as, customer, slack_hook):
    login_as(Role.ADMIN)
    secret_url = slack_hook.url + "/T0001/B0001/abcdEFGHijkl"
    add_channel(client, customer, kind="slack", url=secret_url, name="#ops-alerts")
    row = db.session.scalar(db.select(ChatChannel))
    assert row.webhook_url_encrypted != secret_url and decrypt_secret(row.webhook_url_encrypted) == secret_url
    for url in ("/chat-channels", f"/chat-channels/{row.id}", "/audit"):
        page = client.get(url)
        assert page.status_code == 200 and secret_url not in page.text and "abcdEFGH" not in page.text
    assert "set, ending …ijkl" in client.get(f"/chat-channels/{row.id}").text

    edit = read_form(client.get(f"/chat-channels/{row.id}").text, f"/chat-channels/{row.id}")
    assert edit.values["webhook_url"] == [""]
    data = {**edit.values, "name": "#ops-pager", "min_severity": "critical"}
    assert client.post(f"/chat-channels/{row.id}", data=data).status_code == 302
    db.session.expire_all()
    assert (row.name, row.min_severity) == ("#ops-pager", "critical")
    assert decrypt_secret(row.webhook_url_encrypted) == secret_url  # an empty box kept it
    audit = db.session.scalars(db.select(AuditLog).where(AuditLog.action.like("chat_channel.%"))).all()
    assert secret_url not in json.dumps([a.changes for a in audit], default=str)


def test_a_test_post_goes_through_the_delivery_log_and_delete_removes_the_channel(
    client, login_as, customer, teams_hook, drain
):
    login_as(Role.OPERATOR)
    assert add_channel(client, customer, kind="teams", url=teams_hook.url, name="Ops team").status_code == 302
    row = db.session.scalar(db.select(ChatChannel))
    answer = client.post(f"/chat-channels/{row.id}/test")
    assert answer.status_code == 302 and "watch=" in answer.headers["Location"]
    drain()
    [test] = chat_rows()
    assert test.status == S.SENT and test.event_id is None
    log = client.get(f"/deliveries/{test.id}")
    assert log.status_code == 200 and "Ops team" in log.text and teams_hook.url not in log.text
    [body] = posted(teams_hook)
    assert body["attachments"][0]["content"]["body"][0]["text"].endswith("OpsRelay test message")
    assert client.post(f"/chat-channels/{row.id}/delete").status_code == 302
    assert db.session.scalar(db.select(db.func.count(ChatChannel.id))) == 0


def test_operators_see_their_customers_chat_channels_only_and_viewers_none(
    client, login_as, make_user, customer, make_customer, slack_hook, each_request_loads_its_user
):
    db.session.add(ChatChannel(customer_id=customer.id, kind="slack", name="#acme", webhook_url_encrypted=None))
    other = make_customer("Globex")
    db.session.add(ChatChannel(customer_id=other.id, kind="slack", name="#globex", webhook_url_encrypted=None))
    db.session.commit()
    login_as(Role.OPERATOR)
    page = client.get("/chat-channels").text
    assert "#acme" in page and "#globex" not in page
    globex = db.session.scalar(db.select(ChatChannel).where(ChatChannel.name == "#globex"))
    assert client.get(f"/chat-channels/{globex.id}").status_code == 404
    assert client.post(f"/chat-channels/{globex.id}/delete").status_code == 404
    client.post("/logout")

    login_as(Role.VIEWER)  # a customer's wiring is for its operators and admins (as outgoing webhooks are)
    acme = db.session.scalar(db.select(ChatChannel).where(ChatChannel.name == "#acme"))
    assert client.get("/chat-channels").status_code == 403
    assert client.get(f"/chat-channels/{acme.id}").status_code == 403
    assert client.post(f"/chat-channels/{acme.id}/delete").status_code == 403
    assert add_channel(client, customer, kind="slack", url=slack_hook.url, name="#new").status_code == 403
    assert db.session.scalar(db.select(db.func.count(ChatChannel.id))) == 2


# --- Slack's Acknowledge button ---------------------------------------------------------------------


def test_a_signed_click_acknowledges_the_incident_as_the_matching_user(client, make_user, customer, slack_hook, drain):
    alice = make_user(Role.OPERATOR, email="alice@example.com", name="Alice Martin")
    event = fire(customer=customer, source="alertmanager", title="DiskFull", severity="critical")
    signed = slack_request(click(event.incident_id, email="Alice@Example.com", response_url=slack_hook.url))
    answer = client.post("/api/v1/webhooks/slack/interactions", **signed)
    assert answer.status_code == 200
    assert answer.json["replace_original"] is True
    assert answer.json["text"] == f"Acknowledged by Alice Martin: #{event.incident_id} DiskFull"
    blocks = answer.json["blocks"]
    assert not any(block["type"] == "actions" for block in blocks)  # the button is gone
    assert blocks[-1]["elements"][0]["text"] == "✅ Acknowledged by Alice Martin"
    incident = db.session.get(Incident, event.incident_id)
    db.session.refresh(incident)
    assert incident.state == IncidentState.ACKNOWLEDGED
    assert (incident.acknowledged_by_id, incident.acknowledged_via) == (alice.id, "Slack")
    drain()  # the same message replaces the clicked one through the click's response_url
    [reply] = posted(slack_hook)
    assert reply["replace_original"] is True and reply["blocks"] == blocks

    again = client.post("/api/v1/webhooks/slack/interactions", **slack_request(click(event.incident_id)))
    assert again.status_code == 200 and again.json["text"].startswith("Already acknowledged (Alice Martin)")


def test_a_click_by_someone_without_an_account_is_recorded_under_their_slack_name(client, customer):
    event = fire(customer=customer, source="alertmanager", severity="critical")
    answer = client.post(
        "/api/v1/webhooks/slack/interactions", **slack_request(click(event.incident_id, username="bob.ops"))
    )
    assert answer.status_code == 200 and answer.json["text"].startswith("Acknowledged by @bob.ops (Slack)")
    incident = db.session.get(Incident, event.incident_id)
    db.session.refresh(incident)
    assert incident.state == IncidentState.ACKNOWLEDGED
    assert (incident.acknowledged_by_id, incident.acknowledged_via) == (None, "Slack: @bob.ops")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: r["headers"].update({"X-Slack-Signature": "v0=" + "0" * 64}), id="wrong signature"),
        pytest.param(lambda r: r.update(data=r["data"] + b"&x=1"), id="changed body"),
        pytest.param(lambda r: r["headers"].pop("X-Slack-Signature"), id="no signature"),
        pytest.param(lambda r: r["headers"].pop("X-Slack-Request-Timestamp"), id="no timestamp"),
    ],
)
def test_a_bad_signature_is_refused_and_changes_nothing(client, customer, tamper):
    event = fire(customer=customer, source="alertmanager", severity="critical")
    request = slack_request(click(event.incident_id))
    tamper(request)
    answer = client.post("/api/v1/webhooks/slack/interactions", **request)
    assert answer.status_code == 401 and answer.json["error"]["code"] == "unauthorized"
    db.session.expire_all()
    assert db.session.get(Incident, event.incident_id).state == IncidentState.TRIGGERED


def test_a_stale_or_wrongly_keyed_click_is_refused(client, customer):
    event = fire(customer=customer, source="alertmanager", severity="critical")
    stale = slack_request(click(event.incident_id), timestamp=int(time.time()) - 6 * 60)  # well signed, too old
    answer = client.post("/api/v1/webhooks/slack/interactions", **stale)
    assert answer.status_code == 401 and "stale" in answer.json["error"]["message"]
    other_key = slack_request(click(event.incident_id), secret="another-apps-secret")
    assert client.post("/api/v1/webhooks/slack/interactions", **other_key).status_code == 401
    db.session.expire_all()
    assert db.session.get(Incident, event.incident_id).state == IncidentState.TRIGGERED


def test_a_signed_request_that_is_no_ack_click_gets_a_clear_4xx(client, customer):
    no_payload = slack_request({})
    no_payload["data"] = b"nothing=here"
    stamp = no_payload["headers"]["X-Slack-Request-Timestamp"]
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + b"nothing=here", hashlib.sha256).hexdigest()
    no_payload["headers"]["X-Slack-Signature"] = f"v0={digest}"
    assert client.post("/api/v1/webhooks/slack/interactions", **no_payload).status_code == 400
    answer = client.post("/api/v1/webhooks/slack/interactions", **slack_request({"type": "view_submission"}))
    assert answer.status_code == 422
    gone = client.post("/api/v1/webhooks/slack/interactions", **slack_request(click(999_999)))
    assert gone.status_code == 200 and gone.json["text"] == "This incident no longer exists."


def test_without_a_signing_secret_there_is_no_button_and_clicks_are_refused(
    app, client, login_as, customer, slack_hook, drain
):
    app.config["SLACK_SIGNING_SECRET"] = None
    login_as(Role.ADMIN)
    add_channel(client, customer, kind="slack", url=slack_hook.url, name="#ops")
    event = fire(customer=customer, source="alertmanager", severity="critical")
    drain()
    [body] = posted(slack_hook)
    [buttons] = [block["elements"] for block in body["blocks"] if block["type"] == "actions"]
    assert [b["text"]["text"] for b in buttons] == ["Open in OpsRelay"]
    answer = client.post("/api/v1/webhooks/slack/interactions", **slack_request(click(event.incident_id)))
    assert answer.status_code == 403


def test_an_escalation_step_can_post_an_incident_to_the_customers_chat_channels(
    client, login_as, customer, slack_hook, drain
):
    login_as(Role.ADMIN)
    add_channel(client, customer, kind="slack", url=slack_hook.url, name="#ops", min_severity="critical")
    add_channel(client, customer, kind="slack", url=slack_hook.url, name="#managers", min_severity="critical")
    event = fire(customer=customer, source="alertmanager", severity="critical", title="ApiDown")
    drain()
    assert len(slack_hook.accepted) == 2
    managers = db.session.scalar(db.select(ChatChannel).where(ChatChannel.name == "#managers"))
    incident = db.session.get(Incident, event.incident_id)
    assert chat.post_incident(incident, channel_ids=[managers.id]) == []  # already told of this event
    db.session.execute(sa.delete(Notification).where(Notification.chat_channel_id == managers.id))
    [routed] = chat.post_incident(incident, channel_ids=[managers.id])
    db.session.commit()
    drain()
    assert db.session.get(Notification, routed.id).status == S.SENT and len(slack_hook.accepted) == 3
