"""One write path per entity: every editable field of a notification preference and of SMTP settings
round-trips through its page (a real form POST, then the page shows it) and through the API (POST, then GET),
and the same bad value gets the same message from both. The cases come from the field lists themselves
(PREFERENCE, SMTP_CONFIG), so a field added there is tested here without a new line.

Also the issue's cross-tenant case: a customer-limited key (or an operator) cannot write the preferences of an
admin or of another customer's user, with user_id left out or given, and nothing changes."""

from __future__ import annotations

from collections import defaultdict
from html.parser import HTMLParser

import pytest

from tests.test_api_resources import token_for
from webapp.extensions import db
from webapp.fields import (
    Boolean,
    Choice,
    Choices,
    Clock,
    Email,
    Field,
    Integer,
    Secret,
    SecretUrl,
    Text,
    TextList,
    TimeZone,
)
from webapp.models import AuditLog, NotificationPreference, Role, SmtpConfig
from webapp.security import decrypt_secret
from webapp.services.integrations import api_keys
from webapp.services.integrations.smtp_configs import SMTP_CONFIG
from webapp.services.people.preferences import PREFERENCE

# --- values derived from a field's type and limits ----------------------------------------------------


def _key(choice):
    return getattr(choice, "value", choice)


def good_value(field: Field):
    """A valid JSON value for `field` that is not its default."""
    if isinstance(field, Boolean):
        return not field.default
    if isinstance(field, Choices):
        keys = [_key(c) for c in field.choices]
        return keys[:1] if field.initial() != keys[:1] else keys[-1:]
    if isinstance(field, Choice):
        keys = [_key(c) for c in field.choices]
        return next(k for k in reversed(keys) if k != _key(field.default))
    if isinstance(field, Integer):
        return field.maximum if field.maximum is not None else (field.minimum or 0) + 1000
    if isinstance(field, Email):
        return "pager@example.com"
    if isinstance(field, SecretUrl):
        return "https://hooks.slack.com/services/T0001/B0001/round-trip"
    if isinstance(field, Secret):
        return "s3cret-for-round-trip"
    if isinstance(field, Text):
        return f"{field.name} value"[: field.max_length]
    if isinstance(field, Clock):
        return "22:30"
    if isinstance(field, TimeZone):
        return "Europe/Paris"
    if isinstance(field, TextList):
        return ["backup", "etl-nightly"]
    raise AssertionError(f"teach this test a good value for {type(field).__name__}")


def bad_values(field: Field) -> list:
    """JSON values `field` refuses that a person can also type on a page."""
    if isinstance(field, Boolean):
        return []  # a checkbox is ticked or not: nothing to type wrong
    if isinstance(field, Choices):
        return [["pigeon"]]
    if isinstance(field, Choice):
        return ["pigeon"]
    if isinstance(field, Integer):
        bounds = [field.minimum - 1] if field.minimum is not None else []
        bounds += [field.maximum + 1] if field.maximum is not None else []
        return [*bounds, "twelve"]
    if isinstance(field, Email):
        return ["not-an-email"]
    if isinstance(field, SecretUrl):
        return ["not a url", "http://10.0.0.1/hook", "x" * (field.max_length + 1)]
    if isinstance(field, Secret):
        return ["x" * (field.max_length + 1)]
    if isinstance(field, Text):
        empty = [""] if field.required and not field.blank_is_default else []
        return [*empty, "x" * (field.max_length + 1)]
    if isinstance(field, Clock):
        return ["25:00", "7pm"]
    if isinstance(field, TimeZone):
        return ["Mars/Olympus"]
    if isinstance(field, TextList):
        return [["x" * (field.max_length + 1)]]
    raise AssertionError(f"teach this test bad values for {type(field).__name__}")


def typed(field: Field, value) -> list[str]:
    """What a person types (or ticks) on the page for the JSON `value`."""
    if isinstance(field, Boolean):
        return ["y"] if value else []
    if isinstance(field, Choices):
        return [str(v) for v in value]
    if isinstance(field, TextList):
        return [", ".join(value)]
    return ["" if value is None else str(value)]


def shown(field: Field, value):
    """What the API shows for the JSON `value` once stored."""
    return field.dump(field.check(value))


# Values a rule between fields asks for alongside (both ends of the quiet hours, or neither).
COMPANIONS = {"quiet_hours_start": {"quiet_hours_end": "06:15"}, "quiet_hours_end": {"quiet_hours_start": "06:15"}}


def cases(spec, values):
    return [pytest.param(f.name, v, id=f"{f.name}={v!r}"[:60]) for f in spec.fields for v in values(f)]


# --- reading a page's form as a browser would submit it -------------------------------------------------


class FormState(HTMLParser):
    """The values a browser would POST from the page's form aimed at `action`, and the message shown next to
    each field (the element with id "<field>-error")."""

    def __init__(self, action: str):
        super().__init__()
        self.action = action
        self.values: dict[str, list[str]] = defaultdict(list)
        self.errors: dict[str, str] = {}
        self._form = False
        self._select: tuple[str, list[str], list[str]] | None = None
        self._error: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = a.get("method") == "post" and a.get("action", self.action) == self.action
        if a.get("id", "").endswith("-error") and "field-error" in a.get("class", ""):
            self._error = a["id"].removesuffix("-error")
            self.errors[self._error] = ""
        if not self._form or "disabled" in a:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.values[a["name"]].append(a.get("value", "on"))
            else:
                self.values[a["name"]].append(a.get("value") or "")
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], [], [])
        elif tag == "option" and self._select is not None:
            self._select[1].append(a.get("value", ""))
            if "selected" in a:
                self._select[2].append(a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = False
        elif tag == "select" and self._select is not None:
            name, options, selected = self._select
            self.values[name].extend(selected or options[:1])
            self._select = None
        elif tag == "div":
            self._error = None

    def handle_data(self, data):
        if self._error is not None:
            self.errors[self._error] += data


def read_form(page: str, action: str) -> FormState:
    state = FormState(action)
    state.feed(page)
    return state


# --- notification preferences -----------------------------------------------------------------------


def _my_pref(user) -> NotificationPreference | None:
    db.session.expire_all()
    return db.session.scalar(
        db.select(NotificationPreference).where(
            NotificationPreference.user_id == user.id, NotificationPreference.customer_id.is_(None)
        )
    )


def _page_post(client, url: str, changes: dict[str, list[str]], *, base: dict | None = None):
    """Load the page, change some inputs as a person would, submit it."""
    data = dict(read_form(client.get(url).text, url).values)
    data.update(base or {})
    data.update(changes)
    return client.post(url, data=data)


def _typed_pref(name: str, value) -> dict[str, list[str]]:
    return {n: typed(PREFERENCE[n], v) for n, v in {name: value, **COMPANIONS.get(name, {})}.items() if n != "password"}


@pytest.mark.parametrize("name", PREFERENCE.names)
def test_every_preference_field_round_trips_through_the_page(client, login_as, name):
    field = PREFERENCE[name]
    value = good_value(field)
    me = login_as(Role.VIEWER)
    response = _page_post(client, "/preferences", _typed_pref(name, value))
    assert response.status_code == 302, read_form(response.text, "/preferences").errors
    assert PREFERENCE.dump(_my_pref(me))[name] == shown(field, value)
    page = read_form(client.get("/preferences").text, "/preferences")
    if isinstance(field, Secret):
        assert decrypt_secret(getattr(_my_pref(me), field.key)) == value
        assert page.values[name] == [""] and value not in client.get("/preferences").text  # never shown back
    else:
        assert page.values[name] == typed(field, shown(field, value))


@pytest.mark.parametrize("name", PREFERENCE.names)
def test_every_preference_field_round_trips_through_the_api(client, make_user, name):
    field = PREFERENCE[name]
    value = good_value(field)
    me = make_user(Role.OPERATOR)
    headers = token_for(client, me)
    created = client.post("/api/v1/preferences", json={name: value, **COMPANIONS.get(name, {})}, headers=headers)
    assert created.status_code == 201, created.json
    url = f"/api/v1/preferences/{created.json['id']}"
    assert client.get(url, headers=headers).json[name] == shown(field, value)
    assert PREFERENCE.dump(_my_pref(me))[name] == shown(field, value)
    back = field.dump(field.initial())
    patched = client.patch(url, json={name: back, **dict.fromkeys(COMPANIONS.get(name, {}))}, headers=headers)
    assert patched.status_code == 200, patched.json
    assert client.get(url, headers=headers).json[name] == back


@pytest.mark.parametrize(("name", "bad"), cases(PREFERENCE, bad_values))
def test_page_and_api_refuse_a_bad_preference_value_with_the_same_message(client, login_as, name, bad):
    field = PREFERENCE[name]
    me = login_as(Role.OPERATOR)
    page = _page_post(client, "/preferences", {name: typed(field, bad)})
    assert page.status_code == 400
    on_page = read_form(page.text, "/preferences").errors
    api = client.post("/api/v1/preferences", json={name: bad}, headers=token_for(client, me))
    assert api.status_code == 422
    assert api.json["error"]["fields"] == {name: on_page[name]}
    assert set(on_page) == {name}
    assert _my_pref(me) is None


@pytest.mark.parametrize("name", [f.name for f in PREFERENCE.fields if isinstance(f, Integer | Boolean)])
def test_the_api_takes_numbers_and_booleans_as_json_not_as_strings(client, make_user, name):
    value = good_value(PREFERENCE[name])
    response = client.post(
        "/api/v1/preferences", json={name: str(value).lower()}, headers=token_for(client, make_user(Role.OPERATOR))
    )
    assert response.status_code == 422 and name in response.json["error"]["fields"]


def test_a_viewer_sets_their_own_preferences_on_the_page_and_with_their_token_not_with_a_read_key(
    client, login_as, customer
):
    viewer = login_as(Role.VIEWER)
    assert _page_post(client, "/preferences", {"notify_on_resolve": []}).status_code == 302
    url = f"/api/v1/preferences/{_my_pref(viewer).id}"
    patched = client.patch(url, json={"notify_on_resolve": True}, headers=token_for(client, viewer))
    assert patched.status_code == 200 and patched.json["notify_on_resolve"] is True
    _, plain = api_keys.create_key(name="ro", scopes=["read"], customer=None, expires_days=None, created_by=viewer)
    db.session.commit()
    refused = client.patch(url, json={"notify_on_resolve": False}, headers={"X-API-Key": plain})
    assert refused.status_code == 403
    assert _my_pref(viewer).notify_on_resolve is True


def test_the_page_edits_the_all_customers_preference_the_api_a_customers_one_too(client, login_as, customer):
    me = login_as(Role.OPERATOR)
    headers = token_for(client, me)
    mine = client.post(
        "/api/v1/preferences", json={"customer_id": customer.id, "notify_on_resolve": False}, headers=headers
    )
    assert mine.status_code == 201 and mine.json["customer_id"] == customer.id
    assert _page_post(client, "/preferences", {"notify_on_resolve": []}).status_code == 302
    rows = client.get("/api/v1/preferences/mine", headers=headers).json["items"]
    assert sorted((r["customer_id"] or 0, r["notify_on_resolve"]) for r in rows) == [(0, False), (customer.id, False)]


# --- SMTP settings -------------------------------------------------------------------------------------

SMTP_BASE = {"host": "smtp.example.com", "from_email": "noc@example.com"}


def _smtp_json(name: str, value) -> dict:
    return {**SMTP_BASE, name: value}


def _smtp_typed(customer, name: str, value) -> tuple[dict, dict]:
    base = {n: typed(SMTP_CONFIG[n], v) for n, v in SMTP_BASE.items()}
    return {**base, "customer": [str(customer.id)]}, {name: typed(SMTP_CONFIG[name], value)}


@pytest.fixture
def write_key(make_user, customer):
    owner = make_user(Role.OPERATOR, customers=[customer])
    _, plain = api_keys.create_key(
        name="smtp", scopes=["write"], customer=customer, expires_days=None, created_by=owner
    )
    db.session.commit()
    return {"X-API-Key": plain}


@pytest.mark.parametrize("name", SMTP_CONFIG.names)
def test_every_smtp_field_round_trips_through_the_page(client, login_as, customer, name):
    field = SMTP_CONFIG[name]
    value = good_value(field)
    login_as(Role.OPERATOR, customers=[customer])
    base, change = _smtp_typed(customer, name, value)
    response = _page_post(client, "/smtp/new", change, base=base)
    assert response.status_code == 302, read_form(response.text, "/smtp/new").errors
    config = db.session.scalars(db.select(SmtpConfig)).one()
    url = response.headers["Location"]
    page = read_form(client.get(url).text, url)
    if isinstance(field, Secret):
        assert decrypt_secret(config.password_encrypted) == value
        assert page.values[name] == [""] and value not in client.get(url).text  # never shown back
    else:
        assert SMTP_CONFIG.dump(config)[name] == shown(field, value)
        assert page.values[name] == typed(field, shown(field, value))


@pytest.mark.parametrize("name", SMTP_CONFIG.names)
def test_every_smtp_field_round_trips_through_the_api(client, write_key, customer, name):
    field = SMTP_CONFIG[name]
    value = good_value(field)
    created = client.post(
        "/api/v1/smtp", json={**_smtp_json(name, value), "customer_id": customer.id}, headers=write_key
    )
    assert created.status_code == 201, created.json
    url = f"/api/v1/smtp/{created.json['id']}"
    answer = client.get(url, headers=write_key).json
    assert answer[name] == ("********" if isinstance(field, Secret) else shown(field, value))
    config = db.session.get(SmtpConfig, created.json["id"])
    if isinstance(field, Secret):
        assert decrypt_secret(config.password_encrypted) == value
    if isinstance(field, Secret):
        assert client.patch(url, json={name: None}, headers=write_key).status_code == 200
        db.session.expire_all()
        assert decrypt_secret(db.session.get(SmtpConfig, config.id).password_encrypted) == value  # null keeps it
    elif field.initial() is not None or not field.required:
        back = field.dump(field.initial())
        assert client.patch(url, json={name: back}, headers=write_key).status_code == 200
        assert client.get(url, headers=write_key).json[name] == back


@pytest.mark.parametrize(("name", "bad"), cases(SMTP_CONFIG, bad_values))
def test_page_and_api_refuse_a_bad_smtp_value_with_the_same_message(client, login_as, write_key, customer, name, bad):
    login_as(Role.OPERATOR, customers=[customer])
    base, change = _smtp_typed(customer, name, bad)
    page = _page_post(client, "/smtp/new", change, base=base)
    assert page.status_code == 200
    on_page = read_form(page.text, "/smtp/new").errors
    api = client.post("/api/v1/smtp", json={**_smtp_json(name, bad), "customer_id": customer.id}, headers=write_key)
    assert api.status_code == 422
    assert api.json["error"]["fields"] == {name: on_page[name]}
    assert set(on_page) == {name}
    assert db.session.scalar(db.select(db.func.count(SmtpConfig.id))) == 0


def test_the_seed_booleans_still_set_security_and_must_be_booleans(client, write_key, customer):
    ssl = client.post(
        "/api/v1/smtp", json={**SMTP_BASE, "customer_id": customer.id, "use_ssl": True}, headers=write_key
    )
    assert ssl.status_code == 201 and ssl.json["security"] == "ssl"
    plain = client.patch(f"/api/v1/smtp/{ssl.json['id']}", json={"use_tls": False}, headers=write_key)
    assert plain.json["security"] == "none"
    wrong = client.patch(f"/api/v1/smtp/{ssl.json['id']}", json={"use_tls": "yes"}, headers=write_key)
    assert wrong.status_code == 422 and wrong.json["error"]["fields"] == {"use_tls": "Must be true or false."}


def test_smtp_settings_stay_with_their_customer(client, write_key, customer, make_customer):
    created = client.post("/api/v1/smtp", json={**SMTP_BASE, "customer_id": customer.id}, headers=write_key).json
    other = make_customer("Globex")
    moved = client.patch(f"/api/v1/smtp/{created['id']}", json={"customer_id": other.id}, headers=write_key)
    assert moved.status_code == 422 and "customer_id" in moved.json["error"]["fields"]
    assert db.session.get(SmtpConfig, created["id"]).customer_id == customer.id


def test_a_viewer_key_and_another_customers_key_write_no_smtp_settings(client, customer, make_customer, make_user):
    other = make_customer("Globex")
    owner = make_user(Role.ADMIN)
    keys = {}
    for name, scopes, who in (("read", ["read"], customer), ("other", ["write"], other)):
        _, plain = api_keys.create_key(name=name, scopes=scopes, customer=who, expires_days=None, created_by=owner)
        keys[name] = {"X-API-Key": plain}
    db.session.commit()
    assert (
        client.post("/api/v1/smtp", json={**SMTP_BASE, "customer_id": customer.id}, headers=keys["read"]).status_code
        == 403
    )
    refused = client.post("/api/v1/smtp", json={**SMTP_BASE, "customer_id": customer.id}, headers=keys["other"])
    assert refused.status_code == 422 and "customer_id" in refused.json["error"]["fields"]
    assert db.session.scalar(db.select(db.func.count(SmtpConfig.id))) == 0


# --- the cross-tenant preference write -----------------------------------------------------------


@pytest.fixture
def tenants(make_customer, make_user):
    acme, globex = make_customer("Acme Tenant"), make_customer("Globex Tenant")
    admin = make_user(Role.ADMIN, customers=[])
    acme_user = make_user(Role.OPERATOR, customers=[acme])
    globex_user = make_user(Role.OPERATOR, customers=[globex])
    both = make_user(Role.VIEWER, customers=[acme, globex])
    for user in (admin, globex_user, both):
        db.session.add(NotificationPreference(user_id=user.id, customer_id=None, enabled_channels=["sms"]))
    _, plain = api_keys.create_key(name="acme", scopes=["admin"], customer=acme, expires_days=None, created_by=admin)
    db.session.commit()
    return {
        "acme": acme,
        "globex": globex,
        "admin": admin,
        "acme_user": acme_user,
        "globex_user": globex_user,
        "both": both,
        "acme_key": {"X-API-Key": plain},
    }


def _prefs() -> list[tuple]:
    db.session.expire_all()
    rows = db.session.scalars(db.select(NotificationPreference).order_by(NotificationPreference.id))
    return [(p.user_id, p.customer_id, tuple(p.enabled_channels), p.notify_on_resolve) for p in rows]


def test_a_customer_key_cannot_silence_an_admin_or_another_tenants_user(client, tenants):
    key = tenants["acme_key"]
    before = _prefs()
    audits = db.session.scalar(db.select(db.func.count(AuditLog.id)))
    silence = {"enabled_channels": [], "notify_on_resolve": False}
    own = client.post("/api/v1/preferences", json=silence, headers=key)  # user_id left out: not the admin's
    assert own.status_code == 422 and "user_id" in own.json["error"]["fields"]
    for who in ("admin", "globex_user", "both"):
        refused = client.post("/api/v1/preferences", json={**silence, "user_id": tenants[who].id}, headers=key)
        assert refused.status_code == 422 and "user_id" in refused.json["error"]["fields"], who
    for pref_id in [p.id for p in db.session.scalars(db.select(NotificationPreference))]:
        for method in ("patch", "put", "delete"):
            answer = getattr(client, method)(f"/api/v1/preferences/{pref_id}", json=silence, headers=key)
            assert answer.status_code in (403, 404), (method, pref_id, answer.status_code)
    assert _prefs() == before
    assert db.session.scalar(db.select(db.func.count(AuditLog.id))) == audits


def test_an_operator_cannot_write_a_colleagues_or_another_tenants_preferences(client, tenants, login_as):
    operator = login_as(Role.OPERATOR, customers=[tenants["acme"]])
    before = _prefs()
    for who in ("admin", "acme_user", "globex_user", "both"):
        page = client.post(f"/users/{tenants[who].id}/preferences", data={"enabled_channels": []})
        assert page.status_code in (403, 404), who
        api = client.post("/api/v1/preferences", json={"user_id": tenants[who].id}, headers=token_for(client, operator))
        assert api.status_code == 422, who
    assert _prefs() == before


def test_a_customer_key_sets_preferences_of_its_own_customers_users(client, tenants):
    key = tenants["acme_key"]
    made = client.post(
        "/api/v1/preferences", json={"user_id": tenants["acme_user"].id, "notify_on_resolve": False}, headers=key
    )
    assert made.status_code == 201 and made.json["notify_on_resolve"] is False
    listed = {(p["user_id"], p["customer_id"]) for p in client.get("/api/v1/preferences", headers=key).json["items"]}
    assert (tenants["globex_user"].id, None) not in listed and (tenants["admin"].id, None) not in listed
