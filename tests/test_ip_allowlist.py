"""IP allow-lists (issue 20): per webhook source, for the Alertmanager token, per API key; the client address
behind TRUSTED_PROXIES proxies (X-Forwarded-For, werkzeug's ProxyFix semantics).

Requests come from a chosen socket address (the test client's environ_base REMOTE_ADDR). A refused request
gets 403 JSON naming the address seen, stores nothing and is counted; an accepted one is served as before."""

from __future__ import annotations

import json

import pytest

from tests import test_webhooks_generic as generic
from tests import test_webhooks_github as github
from tests import test_webhooks_pagerduty as pagerduty
from tests.conftest import PASSWORD, _reset, load_fixture
from tests.test_api_keys import admin_key  # noqa: F401  (a fixture)
from tests.test_ops import _sample
from webapp import config
from webapp.extensions import db
from webapp.models import ApiKey, AuditLog, Event, Role, User, WebhookSource
from webapp.services.integrations import api_keys, webhook_sources

INSIDE, OUTSIDE = "198.51.100.7", "203.0.113.9"
OFFICE = "198.51.100.0/24"
ALERTMANAGER = "/api/v1/webhooks/alertmanager"
BAD_CIDR = "'10.0.0.0/33' is not a network: use CIDR, e.g. 203.0.113.0/24 or 2001:db8::/32"


def from_(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def events() -> int:
    return db.session.scalar(db.select(db.func.count(Event.id)))


def refused_count(client, guard: str) -> float:
    return _sample(client.get("/metrics").text, f'opsrelay_allowlist_refused_total{{guard="{guard}"}}')


def assert_refused(response, address: str, what: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json["error"]["message"] == f"requests from {address} are not allowed for {what}"


@pytest.fixture
def app_with(make_app, database):
    """An app with extra settings (TRUSTED_PROXIES, ALERT_WEBHOOK_ALLOWED_IPS), in context, on a clean database."""
    contexts = []

    def _make(**settings):
        app = make_app(**settings)
        context = app.app_context()
        context.push()
        contexts.append(context)
        _reset(database["seeds"])
        return app

    yield _make
    for context in reversed(contexts):
        db.session.remove()
        context.pop()


def an_admin() -> User:
    """An admin in the app_with app (the suite's make_user belongs to the `app` fixture's)."""
    admin = User(email="root@example.com", name="Root", role=Role.ADMIN, is_active=True, customers=[])
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.commit()
    return admin


# --- per webhook source ------------------------------------------------------------------------------------


def _pagerduty(client, address, headers=None):
    raw = json.dumps(pagerduty.payload()).encode()
    sent = {"X-PagerDuty-Signature": pagerduty.sign(raw, pagerduty.SECRET), **(headers or {})}
    return client.post(pagerduty.URL, data=raw, headers=sent, content_type="application/json", **from_(address))


def _github(client, address, headers=None):
    return github.post(client, github.merged_pr(), headers=headers, **from_(address))


def _generic(client, address, headers=None):
    return generic.post(client, generic.JOB, headers=headers, **from_(address))


def _generic_unsigned(client, address, headers=None):
    return generic.post(client, generic.JOB, secret=None, headers=headers, **from_(address))


SENDERS = {
    "pagerduty": ("pagerduty", pagerduty.SECRET, _pagerduty),
    "github": ("github", github.SECRET, _github),
    "generic": ("generic", generic.SECRET, _generic),
    "generic-unsigned": ("generic", None, _generic_unsigned),
}


@pytest.mark.parametrize("sender", SENDERS)
def test_a_source_accepts_its_networks_and_refuses_the_rest_storing_nothing(app, client, customer, sender):
    kind, secret, post = SENDERS[sender]
    name = "automation" if kind == "generic" else f"{kind}-acme"
    source = webhook_sources.create(
        name=name, kind=kind, customer=customer, secret=secret, allowed_ips=f"{OFFICE}, 2001:db8::/32"
    )
    db.session.commit()
    before = refused_count(client, "webhook_source")

    refused = post(client, OUTSIDE)
    assert_refused(refused, OUTSIDE, "this source")
    db.session.expire_all()
    assert events() == 0 and db.session.get(WebhookSource, source.id).last_received_at is None
    assert refused_count(client, "webhook_source") == before + 1
    webhooks = [line for line in client.get("/metrics").text.splitlines() if "webhooks_received_total{" in line]
    labels = (f'source="{kind}"', 'outcome="refused"', 'status="403"')
    assert any(all(label in line for label in labels) for line in webhooks)  # and among the refused webhooks

    accepted = post(client, INSIDE)
    assert accepted.status_code == 200, accepted.json
    assert events() >= 1
    assert post(client, "2001:db8::5").status_code in (200, 409)  # IPv6 inside (a signed generic body: replay)


def test_a_source_without_an_allow_list_accepts_any_address(app, client, customer):
    webhook_sources.create(name="automation", kind="generic", customer=customer, secret=generic.SECRET)
    db.session.commit()
    assert _generic(client, OUTSIDE).status_code == 200


def test_the_wrong_secret_from_an_allowed_address_is_still_refused(app, client, customer):
    webhook_sources.create(
        name="automation", kind="generic", customer=customer, secret=generic.SECRET, allowed_ips=[OFFICE]
    )
    db.session.commit()
    response = generic.post(client, generic.JOB, secret="not-the-secret-0123456789", **from_(INSIDE))
    assert response.status_code == 401 and events() == 0


# --- per API key -------------------------------------------------------------------------------------------


def _make_key(client, admin: str, networks) -> dict:
    created = client.post(
        "/api/v1/auth/api-keys",
        json={"name": "monitoring", "scopes": ["read"], "allowed_ips": networks},
        headers={"X-API-Key": admin},
    )
    assert created.status_code == 201, created.json
    return created.json


def test_an_api_key_answers_inside_its_networks_and_403_outside(client, admin_key):  # noqa: F811
    created = _make_key(client, admin_key, [OFFICE, "10.1.2.3"])
    assert created["allowed_ips"] == [OFFICE, "10.1.2.3/32"]
    key = {"X-API-Key": created["key"]}
    before = refused_count(client, "api_key")

    refused = client.get("/api/v1/events", headers=key, **from_(OUTSIDE))
    assert_refused(refused, OUTSIDE, "this API key")
    assert db.session.get(ApiKey, created["id"]).last_used_at is None  # not even its use is recorded
    assert refused_count(client, "api_key") == before + 1

    assert client.get("/api/v1/events", headers=key, **from_(INSIDE)).status_code == 200
    assert client.get("/api/v1/auth/verify", headers=key, **from_("10.1.2.3")).status_code == 200
    assert client.get("/api/v1/auth/verify", headers=key, **from_("10.1.2.4")).status_code == 403


def test_an_api_key_limited_to_an_ipv6_network(client, admin_key):  # noqa: F811
    key = {"X-API-Key": _make_key(client, admin_key, ["2001:db8:ab::/48"])["key"]}
    assert client.get("/api/v1/auth/verify", headers=key, **from_("2001:db8:ab:1::9")).status_code == 200
    assert_refused(
        client.get("/api/v1/auth/verify", headers=key, **from_("2001:db8:ac::9")), "2001:db8:ac::9", "this API key"
    )
    assert client.get("/api/v1/auth/verify", headers=key, **from_(INSIDE)).status_code == 403  # IPv4: not in it
    # a dual-stack socket's IPv4-mapped address is the IPv4 address
    v4 = {"X-API-Key": _make_key(client, admin_key, [OFFICE])["key"]}
    assert client.get("/api/v1/auth/verify", headers=v4, **from_(f"::ffff:{INSIDE}")).status_code == 200


def test_the_api_changes_a_keys_allow_list_and_the_audit_log_records_it(client, admin_key):  # noqa: F811
    created = _make_key(client, admin_key, [])
    key = {"X-API-Key": created["key"]}
    assert client.get("/api/v1/auth/verify", headers=key, **from_(OUTSIDE)).status_code == 200  # empty: anyone
    changed = client.patch(
        f"/api/v1/auth/api-keys/{created['id']}", json={"allowed_ips": [OFFICE]}, headers={"X-API-Key": admin_key}
    )
    assert changed.status_code == 200 and changed.json["allowed_ips"] == [OFFICE]
    assert client.get("/api/v1/auth/verify", headers=key, **from_(OUTSIDE)).status_code == 403
    entry = db.session.scalars(db.select(AuditLog).where(AuditLog.action == "api_key.allowed_ips")).one()
    assert entry.target_id == created["id"] and entry.changes == {"allowed_ips": [[], [OFFICE]]}
    listed = client.get("/api/v1/auth/api-keys", headers={"X-API-Key": admin_key}).json["items"]
    assert next(item for item in listed if item["id"] == created["id"])["allowed_ips"] == [OFFICE]


@pytest.mark.parametrize(
    ("networks", "message"),
    [
        (["10.0.0.0/33"], BAD_CIDR),
        ([OFFICE, "intranet"], "'intranet' is not a network: use CIDR, e.g. 203.0.113.0/24 or 2001:db8::/32"),
        ("10.0.0.0/8", 'a list of networks (CIDR), e.g. ["203.0.113.0/24", "2001:db8::/32"]'),
        ([10], 'a list of networks (CIDR), e.g. ["203.0.113.0/24", "2001:db8::/32"]'),
    ],
)
def test_the_api_names_an_invalid_network_and_saves_nothing(client, admin_key, networks, message):  # noqa: F811
    keys = db.session.scalar(db.select(db.func.count(ApiKey.id)))
    created = client.post(
        "/api/v1/auth/api-keys", json={"name": "bad", "allowed_ips": networks}, headers={"X-API-Key": admin_key}
    )
    assert created.status_code == 422 and created.json["error"]["fields"] == {"allowed_ips": message}
    assert db.session.scalar(db.select(db.func.count(ApiKey.id))) == keys
    existing = _make_key(client, admin_key, [OFFICE])
    changed = client.patch(
        f"/api/v1/auth/api-keys/{existing['id']}", json={"allowed_ips": networks}, headers={"X-API-Key": admin_key}
    )
    assert changed.status_code == 422 and changed.json["error"]["fields"] == {"allowed_ips": message}
    db.session.expire_all()
    assert db.session.get(ApiKey, existing["id"]).allowed_ips == [OFFICE]


# --- the Alertmanager token ----------------------------------------------------------------------------------


def _alert(client, address, headers=None):
    return client.post(
        ALERTMANAGER,
        data=load_fixture("webhooks/alertmanager_firing.json"),
        headers={"Authorization": "Bearer test-alert-token", **(headers or {})},
        content_type="application/json",
        **from_(address),
    )


def test_the_alertmanager_token_is_accepted_only_from_its_networks(app_with):
    app = app_with(ALERT_WEBHOOK_ALLOWED_IPS=["10.0.0.0/8", "fd00::/8"])
    client = app.test_client()
    before = refused_count(client, "alertmanager")
    assert_refused(_alert(client, OUTSIDE), OUTSIDE, "the Alertmanager token")
    assert events() == 0 and refused_count(client, "alertmanager") == before + 1
    assert _alert(client, "10.20.30.40").status_code == 200 and events() == 1
    assert _alert(client, "fd00::1").status_code == 200  # IPv6 (a redelivery: counted as a duplicate)


def test_without_the_setting_the_alertmanager_token_works_from_anywhere(client):
    assert _alert(client, OUTSIDE).status_code == 200


# --- the client address behind proxies ---------------------------------------------------------------------

PROXY = "10.99.0.1"  # the socket's address when a proxy (Heroku's router) connects


def test_without_trusted_proxies_a_forged_x_forwarded_for_cannot_get_in(app_with):
    client = app_with(ALERT_WEBHOOK_ALLOWED_IPS=["10.0.0.0/8"]).test_client()
    forged = _alert(client, OUTSIDE, headers={"X-Forwarded-For": "10.1.2.3"})
    assert_refused(forged, OUTSIDE, "the Alertmanager token")  # the socket's address, not the header's
    assert events() == 0


def test_one_trusted_proxy_takes_the_right_most_hop(app_with):
    client = app_with(TRUSTED_PROXIES=1, ALERT_WEBHOOK_ALLOWED_IPS=["10.0.0.0/8"]).test_client()
    # the router appended the address it saw (10.1.2.3): inside, whatever the client wrote before it
    assert _alert(client, PROXY, headers={"X-Forwarded-For": f"{OUTSIDE}, 10.1.2.3"}).status_code == 200
    # a client writing an inside address itself: the router's hop (its real address) is the one read
    forged = _alert(client, PROXY, headers={"X-Forwarded-For": f"10.1.2.3, {OUTSIDE}"})
    assert_refused(forged, OUTSIDE, "the Alertmanager token")


def test_two_trusted_proxies_take_the_second_hop_from_the_right(app_with):
    client = app_with(TRUSTED_PROXIES=2, ALERT_WEBHOOK_ALLOWED_IPS=["10.0.0.0/8"]).test_client()
    # CDN -> router -> OpsRelay: the router appended the CDN's address, the CDN the client's
    assert _alert(client, PROXY, headers={"X-Forwarded-For": f"{OUTSIDE}, 10.1.2.3, 192.0.2.50"}).status_code == 200
    refused = _alert(client, PROXY, headers={"X-Forwarded-For": f"10.1.2.3, {OUTSIDE}, 10.5.5.5"})
    assert_refused(refused, OUTSIDE, "the Alertmanager token")


def test_the_forwarded_client_is_the_one_every_part_of_the_app_sees(app_with):
    """ProxyFix is app-wide: the audit log records the same client the allow-list checked."""
    app = app_with(TRUSTED_PROXIES=1)
    admin = an_admin()
    _, plain = api_keys.create_key(
        name="bootstrap", scopes=["admin"], customer=None, expires_days=None, created_by=admin
    )
    db.session.commit()
    client = app.test_client()
    created = client.post(
        "/api/v1/auth/api-keys",
        json={"name": "ci", "allowed_ips": ["2001:db8::/32"]},
        headers={"X-API-Key": plain, "X-Forwarded-For": "2001:db8::77"},
        **from_(PROXY),
    )
    assert created.status_code == 201
    entry = db.session.scalars(db.select(AuditLog).where(AuditLog.target_id == created.json["id"])).one()
    assert entry.ip_address == "2001:db8::77"
    key = {"X-API-Key": created.json["key"]}
    assert (
        client.get("/api/v1/auth/verify", headers={**key, "X-Forwarded-For": "2001:db8::9"}, **from_(PROXY)).status_code
        == 200
    )
    refused = client.get("/api/v1/auth/verify", headers={**key, "X-Forwarded-For": OUTSIDE}, **from_(PROXY))
    assert_refused(refused, OUTSIDE, "this API key")


# --- the settings, validated at start ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ALERT_WEBHOOK_ALLOWED_IPS": "10.0.0.0/8, 10.0.0.0/33"}, f"ALERT_WEBHOOK_ALLOWED_IPS: {BAD_CIDR}"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES must be the number of proxies in front of OpsRelay (0 to 10)"),
        ({"TRUSTED_PROXIES": "one"}, "TRUSTED_PROXIES must be a whole number"),
    ],
)
def test_bad_settings_stop_the_app_at_start(monkeypatch, tmp_path, settings, message):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        config.from_environment(str(tmp_path))


def test_the_settings_are_read_and_normalised(monkeypatch, tmp_path):
    monkeypatch.setenv("ALERT_WEBHOOK_ALLOWED_IPS", "10.1.2.3/8  2001:DB8::/32,192.0.2.1")
    monkeypatch.setenv("TRUSTED_PROXIES", "2")
    built = config.from_environment(str(tmp_path))
    assert built["ALERT_WEBHOOK_ALLOWED_IPS"] == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"]
    assert built["TRUSTED_PROXIES"] == 2


# --- the pages: set, show, refuse a bad network --------------------------------------------------------------


def test_an_admin_sets_a_sources_allow_list_on_its_page_and_sees_it(client, login_as, customer):
    login_as("admin", customers=[])
    created = client.post(
        "/integrations/sources",
        data={"name": "ci", "kind": "generic", "customer": customer.id, "allowed_ips": f"{OFFICE}, 2001:db8::/32"},
    )
    assert created.status_code == 200, created.text
    source = db.session.scalars(db.select(WebhookSource).where(WebhookSource.name == "ci")).one()
    assert source.allowed_ips == [OFFICE, "2001:db8::/32"]
    assert f"<code>{OFFICE}</code>, <code>2001:db8::/32</code>" in client.get("/integrations/sources").text

    changed = client.post(f"/integrations/sources/{source.id}/allowed-ips", data={"allowed_ips": "192.0.2.0/24"})
    assert changed.status_code == 302
    page = client.get("/integrations/sources").text
    assert "“ci” accepts webhooks from 192.0.2.0/24 from now on." in page and "<code>192.0.2.0/24</code>" in page
    entry = db.session.scalars(db.select(AuditLog).where(AuditLog.action == "webhook_source.allowed_ips")).one()
    assert entry.changes == {"allowed_ips": [[OFFICE, "2001:db8::/32"], ["192.0.2.0/24"]]}
    assert "accepted from 192.0.2.0/24" in client.get("/audit").text

    cleared = client.post(f"/integrations/sources/{source.id}/allowed-ips", data={"allowed_ips": ""})
    assert cleared.status_code == 302
    assert "“ci” accepts webhooks from any address from now on." in client.get("/integrations/sources").text


def test_an_invalid_network_on_the_source_forms_is_a_field_error_and_nothing_is_saved(client, login_as, customer):
    login_as("admin", customers=[])
    refused = client.post(
        "/integrations/sources",
        data={"name": "ci", "kind": "generic", "customer": customer.id, "allowed_ips": "10.0.0.0/33"},
    )
    assert refused.status_code == 422
    assert 'id="allowed_ips-error"' in refused.text and BAD_CIDR.replace("'", "&#39;") in refused.text
    assert db.session.scalar(db.select(db.func.count(WebhookSource.id))) == 0

    source = webhook_sources.create(name="ci", kind="generic", customer=customer, secret=None, allowed_ips=[OFFICE])
    db.session.commit()
    refused = client.post(f"/integrations/sources/{source.id}/allowed-ips", data={"allowed_ips": "10.0.0.0/33"})
    assert refused.status_code == 422
    assert f'id="allowed-ips-source-{source.id}-error"' in refused.text
    assert BAD_CIDR.replace("'", "&#39;") in refused.text
    db.session.expire_all()
    assert db.session.get(WebhookSource, source.id).allowed_ips == [OFFICE]
    assert db.session.scalar(db.select(AuditLog.id).where(AuditLog.action == "webhook_source.allowed_ips")) is None


def test_api_keys_on_the_integrations_page_carry_and_show_their_allow_list(client, login_as, customer):
    login_as("admin", customers=[])
    refused = client.post(
        "/integrations/api-keys", data={"name": "ci", "scope": "read", "customer": "", "allowed_ips": "10.0.0.0/33"}
    )
    assert refused.status_code == 422 and BAD_CIDR.replace("'", "&#39;") in refused.text
    assert db.session.scalar(db.select(db.func.count(ApiKey.id))) == 0

    created = client.post(
        "/integrations/api-keys", data={"name": "ci", "scope": "read", "customer": "", "allowed_ips": OFFICE}
    )
    assert created.status_code == 200
    key = db.session.scalars(db.select(ApiKey)).one()
    assert key.allowed_ips == [OFFICE] and f"<code>{OFFICE}</code>" in created.text

    changed = client.post(f"/integrations/api-keys/{key.id}/allowed-ips", data={"allowed_ips": "2001:db8::/32"})
    assert changed.status_code == 302
    assert "<code>2001:db8::/32</code>" in client.get("/integrations").text
    bad = client.post(f"/integrations/api-keys/{key.id}/allowed-ips", data={"allowed_ips": "2001:db8::/129"})
    assert bad.status_code == 422 and f'id="allowed-ips-key-{key.id}-error"' in bad.text
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).allowed_ips == ["2001:db8::/32"]


def test_the_integrations_page_shows_the_alertmanager_allow_list(app_with):
    app = app_with(ALERT_WEBHOOK_ALLOWED_IPS=["10.0.0.0/8"])
    admin = an_admin()
    client = app.test_client()
    client.post("/login", data={"email": admin.email, "password": PASSWORD})
    page = client.get("/integrations").text
    assert "ALERT_WEBHOOK_ALLOWED_IPS" in page and "<code>10.0.0.0/8</code>" in page
