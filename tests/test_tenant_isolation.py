"""Tenant isolation, generated from the URL map (pages) and the OpenAPI document (the API).

Two customers, Qxalpha (A) and Qxbravo (B), each with an operator and a viewer, one admin (global), one row
of every kind for each customer, and rows of no customer (the operations team's). Every principal of A — its
operator and viewer signed in; read, write and admin API keys of A; an admin-scope key A's operator made (its
owner caps it); the operator's token — asks every page and every API operation for B's rows and for the rows
of no customer: by id in the path, by filter, by cursor, by a form field, by a JSON body field. Each request
is refused (404 for a row it does not see, 403 for what its role may not do, 422 for a body naming what it
does not see; a page may show its form again with the field's error), never answers with B's data, never
500s, and changes no row of any table. The admin is the control: the same ids answer 200, the same lists
show B's rows, the same base forms and bodies are accepted.

Nothing is listed by hand that the app can list itself: the routes come from app.url_map, the operations and
their parameters and body fields from /api/v1/openapi.json, a page's query arguments from what its view reads,
a page's form fields from the forms it renders. A parameter, argument or field these tables cannot fill fails
the test with a message saying what to add, so a new route or operation is covered the day it exists.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from html.parser import HTMLParser
from itertools import product
from urllib.parse import urljoin, urlsplit

import pytest
import sqlalchemy as sa
from flask import g, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing.converters import NumberConverter

from tests.conftest import PASSWORD, _reset, twilio_settings
from tests.ops_helpers import make_event, make_notification
from webapp.extensions import db
from webapp.inputs import MAX_ROW_ID
from webapp.models import (
    EVENT_TYPES,
    ApiKey,
    Channel,
    Heartbeat,
    Holiday,
    Incident,
    MessageTemplate,
    NotificationPreference,
    NotificationStatus,
    PhoneNumber,
    Priority,
    Role,
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    Severity,
    SlaPolicy,
    SmtpConfig,
    Ticket,
    TimelineEntry,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSource,
    utcnow,
)
from webapp.security import encrypt_secret, hash_api_key
from webapp.services.integrations import api_keys

A, B, GLOBAL = "qxalpha", "qxbravo", "qxglobal"  # every row's text carries its owner's mark
FOREIGN = (B, GLOBAL)  # what no principal of A may read
LIMITS = {
    name: "100000 per minute"
    for name in (
        "API_RATE_LIMIT",
        "API_TOKEN_RATE_LIMIT",
        "API_TICKETS_LIST_RATE_LIMIT",
        "API_TICKETS_CREATE_RATE_LIMIT",
        "LOGIN_RATE_LIMIT",
    )
}
VOLATILE = {("api_key", "last_used_at")}  # written by reading (at most once a minute per key)


# --- the app, and what each page's view reads from its query string --------------------------------------

ARGS_READ: set[str] = set()


class _ReadArgs(ImmutableMultiDict):
    """request.args that remembers which names the view asked for."""

    def __contains__(self, key) -> bool:
        ARGS_READ.add(key)
        return super().__contains__(key)

    def __getitem__(self, key):
        ARGS_READ.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None, type=None):  # noqa: A002  (MultiDict's signature)
        ARGS_READ.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # noqa: A002
        ARGS_READ.add(key)
        return super().getlist(key, type)


def _record_args() -> None:
    request.args = _ReadArgs(request.args)


@pytest.fixture
def app(make_app, database, twilio):
    """The suite's app, with rate limits out of the way (hundreds of requests per key) and args recorded."""
    app = make_app(**twilio_settings(twilio.base_url), **LIMITS)
    app.before_request(_record_args)
    with app.app_context():
        _reset(database["seeds"])
        yield app
        db.session.remove()


# --- the world ---------------------------------------------------------------------------------------------


@dataclass
class World:
    a: object
    b: object
    admin: User
    op_a: User
    viewer_a: User
    op_b: User
    viewer_b: User
    ids: dict[tuple[str, str], int] = field(default_factory=dict)  # (owner mark, kind) -> id
    shared_template: int = 0  # a default template: every customer's, so not foreign

    def of(self, owner: str, kind: str) -> int | None:
        return self.ids.get((owner, kind))

    def foreign(self, kind: str) -> list[int]:
        """The ids of this kind that no principal of A may reach: B's, and the one of no customer if any."""
        return [i for i in (self.of(B, kind), self.of(GLOBAL, kind)) if i is not None]


def _customer_rows(world: World, mark: str, customer, op: User, viewer: User) -> None:
    now = utcnow()
    event = make_event(customer, title=f"{mark} alert", severity=Severity.HIGH, body=f"{mark} body")
    ticket = Ticket(
        customer_id=customer.id,
        title=f"{mark} ticket",
        description=f"{mark} description",
        priority=Priority.HIGH,
        assignee_id=op.id,
        due_at=now - timedelta(hours=1),
        warn_at=now - timedelta(hours=2),
    )
    db.session.add(ticket)
    db.session.flush()
    endpoint = WebhookEndpoint(
        customer_id=customer.id,
        name=f"{mark}-endpoint",
        url=f"http://127.0.0.1:9/{mark}",
        secret_encrypted=encrypt_secret("endpoint-secret"),
    )
    db.session.add(endpoint)
    db.session.flush()
    incident = Incident(
        customer_id=customer.id,
        source="alertmanager",
        key=f"{mark}-fingerprint",
        open_key=f"alertmanager:{customer.id}:{mark}-fingerprint",
        title=f"{mark} incident",
        summary=f"{mark} summary",
        severity=Severity.HIGH,
        severity_rank=Severity.HIGH.rank,
        labels={"service": f"{mark}-service", "instance": f"{mark}-1"},
        data={"generatorURL": f"https://prometheus.{mark}.example.com/graph"},
    )
    db.session.add(incident)
    db.session.flush()
    event.incident_id = incident.id
    rows = {
        "event": event,
        "incident": incident,
        "ticket": ticket,
        "webhook_endpoint": endpoint,
        "timeline_entry": TimelineEntry(ticket_id=ticket.id, kind="comment", body=f"{mark} comment", actor_id=op.id),
        "notification": make_notification(
            customer=customer,
            user=op,
            event=event,
            channel=Channel.EMAIL,
            status=NotificationStatus.FAILED,
            subject=f"{mark} notification",
            body=f"{mark} body",
            recipient=f"oncall@{mark}.example.com",
            error_message=f"{mark} failure",
        ),
        "web_notification": make_notification(
            customer=customer, user=op, event=event, channel=Channel.WEB, subject=f"{mark} inbox", recipient=None
        ),
        "sms_notification": make_notification(  # on the SMS spend report and the dashboard's spend card
            customer=customer,
            user=op,
            event=event,
            channel=Channel.SMS,
            status=NotificationStatus.DELIVERED,
            body=f"{mark} sms",
            sms_segments=1,
            sms_country="US",
            sms_cost_micros=8_300,
            sent_at=now,
        ),
        "smtp_config": SmtpConfig(
            customer_id=customer.id,
            name=f"{mark} relay",
            host=f"smtp.{mark}.test",
            from_email=f"noc@{mark}.example.com",
        ),
        "webhook_delivery": WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, event_type="alert"),
        "webhook_source": WebhookSource(name=f"{mark}-source", kind="generic", customer_id=customer.id),
        "preference": NotificationPreference(
            user_id=op.id, customer_id=None, override_email=f"pref@{mark}.example.com"
        ),
        "customer_preference": NotificationPreference(
            user_id=viewer.id, customer_id=customer.id, override_email=f"viewer@{mark}.example.com"
        ),
        "template": MessageTemplate(
            customer_id=customer.id,
            name=f"{mark}-template",
            event_type="alert",
            channel=Channel.EMAIL,
            subject=f"{mark} subject",
            body_text=f"{mark} template",
        ),
        "sla_policy": SlaPolicy(customer_id=customer.id, priority=Priority.HIGH, resolution_minutes=240),
        "holiday": Holiday(customer_id=customer.id, day=date(2026, 12, 25), name=f"{mark} day"),
        "heartbeat": Heartbeat(
            customer_id=customer.id,
            name=f"{mark}-heartbeat",
            interval_seconds=3600,
            grace_seconds=0,
            token_hash=hash_api_key(f"{mark}-heartbeat-token"),
            token_prefix="hb_test",
            due_at=now + timedelta(hours=1),
        ),
        "api_key": ApiKey(
            name=f"{mark}-key",
            prefix=f"{mark[:8]}",
            key_hash=hash_api_key(f"{mark}-not-a-usable-key"),
            scopes=["read"],
            customer_id=customer.id,
            created_by_id=world.admin.id,
        ),
    }
    db.session.add_all(rows.values())
    db.session.flush()
    phone = db.session.scalar(sa.select(PhoneNumber).where(PhoneNumber.user_id == op.id))
    phone.label = f"{mark} phone"
    world.ids.update({(mark, kind): row.id for kind, row in rows.items()})
    world.ids.update({(mark, "customer"): customer.id, (mark, "user"): op.id, (mark, "phone"): phone.id})
    world.ids[(mark, "heartbeat_name")] = rows["heartbeat"].name
    _schedule_rows(world, mark, customer.id, op)


def _schedule_rows(world: World, mark: str, customer_id: int | None, person: User) -> None:
    """An on-call schedule (its name carries the mark), a layer of `person` and an override by them."""
    schedule = Schedule(customer_id=customer_id, name=f"{mark} rota", time_zone="Europe/Paris")
    db.session.add(schedule)
    db.session.flush()
    layer = ScheduleLayer(
        schedule_id=schedule.id,
        name=f"{mark} layer",
        rotation=Rotation.WEEKLY,
        rotation_hours=168,
        handoff_time=time(9, 0),
        starts_on=date(2026, 1, 5),
        member_ids=[person.id],
        restrictions=[],
    )
    now = utcnow()
    override = ScheduleOverride(
        schedule_id=schedule.id,
        user_id=person.id,
        starts_at=now + timedelta(days=400),
        ends_at=now + timedelta(days=401),
        note=f"{mark} override",
    )
    db.session.add_all([layer, override])
    db.session.flush()
    world.ids.update(
        {(mark, "schedule"): schedule.id, (mark, "schedule_layer"): layer.id, (mark, "schedule_override"): override.id}
    )


def _global_rows(world: World) -> None:
    """The operations team's rows (no customer): only whoever sees every customer sees them."""
    # Its title is a shared headline (the dashboard's firing alerts: tenancy); the rest of it is not.
    event = make_event(None, title="operations alert", body=f"{GLOBAL} body")
    incident = Incident(  # its title is the dashboard's shared headline too; the rest is the operations team's
        customer_id=None,
        source="alertmanager",
        key="operations-fingerprint",
        open_key="alertmanager:0:operations-fingerprint",
        title="operations alert",
        summary=f"{GLOBAL} summary",
        severity=Severity.CRITICAL,
        severity_rank=Severity.CRITICAL.rank,
        labels={},
        data={},
    )
    db.session.add(incident)
    db.session.flush()
    event.incident_id = incident.id
    rows = {
        "event": event,
        "incident": incident,
        "notification": make_notification(
            user=world.admin,
            event=event,
            channel=Channel.EMAIL,
            status=NotificationStatus.FAILED,
            subject=f"{GLOBAL} notification",
            recipient=f"admin@{GLOBAL}.example.com",
        ),
        "webhook_endpoint": WebhookEndpoint(
            customer_id=None,
            name=f"{GLOBAL}-endpoint",
            url="http://127.0.0.1:9/operations",  # A's delivery log shows where A's events went: no mark here
            secret_encrypted=encrypt_secret("endpoint-secret"),
        ),
        "webhook_source": WebhookSource(name=f"{GLOBAL}-source", kind="generic", customer_id=None),
        "api_key": ApiKey(
            name=f"{GLOBAL}-key",
            prefix=GLOBAL[:8],
            key_hash=hash_api_key(f"{GLOBAL}-not-a-usable-key"),
            scopes=["admin"],
            customer_id=None,
            created_by_id=world.admin.id,
        ),
        # The admin's own rules (marked in a field nothing of A's shows: where an admin is paged about A's events
        # is in A's notifications, rightly).
        "preference": NotificationPreference(user_id=world.admin.id, customer_id=None, job_types=[f"{GLOBAL}-job"]),
    }
    db.session.add_all(rows.values())
    db.session.flush()
    world.ids.update({(GLOBAL, kind): row.id for kind, row in rows.items()})
    world.ids[(GLOBAL, "user")] = world.admin.id  # a person of no customer
    _schedule_rows(world, GLOBAL, None, world.admin)  # the operations team's own schedule


def build_world(make_customer, make_user) -> World:
    a, b = make_customer("Qxalpha Inc"), make_customer("Qxbravo Ltd")
    world = World(
        a=a,
        b=b,
        admin=make_user(Role.ADMIN, name="Ada Admin", email="ada@example.com", customers=[]),
        op_a=make_user(Role.OPERATOR, name="Qxalpha Operator", phone="+14155550101", customers=[a]),
        viewer_a=make_user(Role.VIEWER, name="Qxalpha Viewer", email="viewer@qxalpha.example.com", customers=[a]),
        op_b=make_user(
            Role.OPERATOR, name="Qxbravo Operator", email="op@qxbravo.example.com", phone="+14155550188", customers=[b]
        ),
        viewer_b=make_user(Role.VIEWER, name="Qxbravo Viewer", email="viewer@qxbravo.example.com", customers=[b]),
    )
    _customer_rows(world, A, a, world.op_a, world.viewer_a)
    _customer_rows(world, B, b, world.op_b, world.viewer_b)
    _global_rows(world)
    world.shared_template = db.session.scalar(
        sa.select(MessageTemplate.id).where(MessageTemplate.customer_id.is_(None)).order_by(MessageTemplate.id)
    )
    db.session.commit()
    return world


@pytest.fixture
def world(app, make_customer, make_user) -> World:
    return build_world(make_customer, make_user)


# --- callers, snapshots, checks ----------------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    client: object
    headers: dict = field(default_factory=dict)

    def __call__(self, method: str, url: str, **kwargs):
        g.pop("_login_user", None)  # the tests share one app context: no signed-in user carried over
        ARGS_READ.clear()
        try:
            return self.client.open(url, method=method, headers=self.headers, **kwargs)
        finally:
            db.session.rollback()  # as the end of a real request: nothing uncommitted survives it


def signed_in(app, user: User) -> Caller:
    client = app.test_client()
    caller = Caller(f"{user.role.value} {user.email}", client)
    answer = caller("POST", "/login", data={"email": user.email, "password": PASSWORD})
    assert answer.status_code == 302, answer.text
    return caller


def key_caller(app, name: str, scopes: list[str], *, customer, owner: User) -> Caller:
    _, plain = api_keys.create_key(name=name, scopes=scopes, customer=customer, expires_days=None, created_by=owner)
    db.session.commit()
    return Caller(f"API key {name}", app.test_client(), {"X-API-Key": plain})


def token_caller(app, user: User) -> Caller:
    client = app.test_client()
    answer = client.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD})
    assert answer.status_code == 200, answer.json
    return Caller(f"token of {user.email}", client, {"Authorization": f"Bearer {answer.json['access_token']}"})


def snapshot() -> dict[str, list[str]]:
    """Every row of every table (committed state)."""
    state = {}
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
        state[table.name] = sorted(repr(tuple(row)) for row in db.session.execute(sa.select(*columns)))
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in after if before.get(name) != after[name]]


def leaked(response, sent: dict) -> list[str]:
    """The marks of foreign rows in the answer, leaving out what the request itself sent (an error may name
    the value it refuses)."""
    text = response.get_data(as_text=True).lower()
    for value in _strings(sent):
        text = text.replace(value.lower(), "")
    return [mark for mark in FOREIGN if mark in text]


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def form_error_shown(response) -> bool:
    return response.status_code == 200 and "is-invalid" in response.get_data(as_text=True)


class Probe:
    """Sends requests and writes down every answer that breaks the rule; a test asserts the list is empty."""

    def __init__(self):
        self.problems: list[str] = []
        self.state = snapshot()
        self.count = 0

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def send(self, caller: Caller, method: str, url: str, *, unchanged: bool = True, **kwargs):
        self.count += 1
        try:
            response = caller(method, url, **kwargs)
        except Exception as exc:  # a 500 that escaped the handlers
            self.fail(f"{caller.name}: {method} {url} raised {type(exc).__name__}: {exc}")
            return None
        where = f"{caller.name}: {method} {url} {_brief(kwargs)}-> {response.status_code}"
        if response.status_code >= 500:
            self.fail(f"{where}: a server error")
        if marks := leaked(response, kwargs):
            self.fail(f"{where}: answers with rows of {', '.join(marks)}")
        if method != "GET" and unchanged:
            after = snapshot()
            if tables := changed_tables(self.state, after):
                self.fail(f"{where}: changed {', '.join(tables)}")
                self.state = after
        return response

    def refused(self, caller, method, url, statuses: set[int], *, form_error_ok=False, ignored_ok=False, **kwargs):
        """Refused with one of `statuses`; `form_error_ok`: or the form shown again with the field's error;
        `ignored_ok`: or the field ignored (send() has already checked that nothing changed)."""
        problems = len(self.problems)
        response = self.send(caller, method, url, **kwargs)
        if response is None or response.status_code in statuses:
            return response
        if (form_error_ok and form_error_shown(response)) or (ignored_ok and len(self.problems) == problems):
            return response
        self.fail(f"{caller.name}: {method} {url} {_brief(kwargs)}-> {response.status_code}, not one of {statuses}")
        return response

    def accepted(self, caller, method, url, **kwargs):
        """The control: a request the rule allows, which may change rows (the new state is the baseline)."""
        self.count += 1
        response = caller(method, url, **kwargs)
        where = f"{caller.name}: {method} {url} {_brief(kwargs)}-> {response.status_code}"
        if response.status_code >= 400 or form_error_shown(response):
            self.fail(f"control {where}: refused, so the refusals above prove nothing ({response.text[:300]})")
        self.state = snapshot()
        return response

    def same_effect(self, caller, url: str, base: dict, attack: dict) -> None:
        """A field the page fixes (renders disabled): sending it anyway must make no difference — the answer
        and the rows it changes are those of the same form without it (an unchanged save may still audit)."""
        effects = []
        for data in (base, attack):
            before = snapshot()
            response = self.send(caller, "POST", url, unchanged=False, data=data)
            self.state = after = snapshot()
            delta = {t: (len(set(after[t]) - set(before[t])), len(set(before[t]) - set(after[t]))) for t in after}
            effects.append((response.status_code if response is not None else None, delta))
        if effects[0] != effects[1]:
            self.fail(
                f"{caller.name}: POST {url} {_brief({'data': attack})}: not ignored: {effects[1]} != {effects[0]}"
            )

    def assert_clean(self) -> None:
        assert not self.problems, f"{len(self.problems)} of {self.count} requests broke the tenant boundary:\n" + (
            "\n".join(self.problems)
        )


def _brief(kwargs: dict) -> str:
    shown = {k: v for k, v in kwargs.items() if k in ("json", "data", "query_string")}
    return (json.dumps(shown, default=str)[:200] + " ") if shown else ""


# --- pages: routes from the URL map --------------------------------------------------------------------------

# A URL argument's kind of row, by name. A route with an argument not here fails test_every_route_is_covered.
PARAM_KIND = {
    "customer_id": "customer",
    "user_id": "user",
    "ticket_id": "ticket",
    "event_id": "event",
    "incident_id": "incident",
    "notification_id": "notification",
    "config_id": "smtp_config",
    "endpoint_id": "webhook_endpoint",
    "webhook_source_id": "webhook_source",
    "key_id": "api_key",
    "phone_id": "phone",
    "pref_id": "preference",
    "template_id": "template",
    "holiday_id": "holiday",
    "heartbeat_id": "heartbeat",
    "schedule_id": "schedule",
    "layer_id": "schedule_layer",
    "override_id": "schedule_override",
    "name": "heartbeat_name",  # POST /api/v1/heartbeats/{name}: a heartbeat's name
}
# arguments that name no row (a failed job's id names no customer's row: the queue page is the admins')
STRING_ARGS = {"priority": "high", "token": "not-an-invitation-token", "job_id": "no-such-job"}
SKIP_ENDPOINTS = {"static"}
# Pages that name no row of anyone's: the sign-in flow and the operations probes (GET only: a POST here
# would sign the caller in or out).
OPEN_ENDPOINTS = {
    "auth.login",
    "auth.logout",
    "auth.invitation",
    "ops.healthz",
    "ops.readyz",
    "ops.metrics",
    "api_docs",
    "ops.favicon",
    "ops.schedule_ical",  # its token is the credential (a wrong one: 404)
}
# POSTs without a row argument that change only the caller's own rows (their inbox, their preferences).
OWN_ROWS_POSTS = {"admin.inbox_read_all", "admin.my_preferences", "admin.schedule_feed_regenerate"}
# Pages without a row argument that show no row of B even to the admin (the control that lists show B's).
NOTHING_OF_B = {
    "admin.inbox",
    "admin.my_preferences",
    "admin.customer_create",
    "admin.audit_list",
    "admin.queue_page",
    "admin.schedule_feed",
}

# Query arguments a page's view reads: the ones that name rows get B's (or no customer's) ids; the others
# cannot reach a row. A view reading an argument in neither set fails the test.
FOREIGN_ARGS: dict[str, Callable[[World], list]] = {
    "customer": lambda w: [w.b.id],
    "customer_id": lambda w: [w.b.id],
    "user": lambda w: [w.op_b.id, w.admin.id],
    "user_id": lambda w: [w.op_b.id, w.admin.id],
    "assignee": lambda w: [w.op_b.id],
    "actor": lambda w: [w.op_b.id],
    "event": lambda w: w.foreign("event"),
    "explain": lambda w: [w.op_b.id, w.viewer_b.id],  # "why not notified?" about a person of B
    "watch": lambda w: w.foreign("notification"),
    "before": lambda w: [MAX_ROW_ID],  # keyset cursors that would take in every row if the scope were lost
    "after": lambda w: [0],
}
PLAIN_ARGS = {
    "q",
    "status",
    "priority",
    "channel",
    "sla",
    "range",
    "unread",
    "from",
    "to",
    "role",
    "action",
    "target",
    "event_type",
    "month",
    "since",
    "until",
    "next",
    "api_key",
    "state",
    "severity",
    "source",
    "label",
    "mine",
    "unacked",
    "order",
    "view",
    "start",
}

# Form fields that name rows (their B values), and the rest of a valid form for each page that has one.
FOREIGN_FIELDS: dict[str, Callable[[World], list]] = {
    "customer": lambda w: [w.b.id, ""],  # "": no customer (global), which only an admin may choose
    "customer_id": lambda w: [w.b.id, 0],
    "customers": lambda w: [w.b.id],
    "assignee": lambda w: [w.op_b.id],  # an admin may be assigned to any customer's ticket
    "user": lambda w: [w.op_b.id, w.admin.id],
    "users": lambda w: [w.op_b.id, w.admin.id],
    "event": lambda w: w.foreign("event"),
    "incident": lambda w: w.foreign("incident"),
}
ROW_NAMES = {"customer", "customers", "user", "users", "assignee", "event", "incident", "ticket", "endpoint", "key"}


def _unused_template_pair(world: World) -> dict:
    have = set(db.session.execute(sa.select(MessageTemplate.event_type, MessageTemplate.channel)).all())
    event_type, channel = next((t, c) for t in EVENT_TYPES for c in Channel if (t, c) not in have)
    return {"event_type": event_type, "channel": channel.value}


BASE_FORMS: dict[str, Callable[[World], dict]] = {
    "admin.ticket_new": lambda w: {"title": f"{A} new ticket", "priority": "normal"},
    "admin.ticket_edit": lambda w: {},
    "admin.test_send": lambda w: {"channel": "email", "to": f"oncall@{A}.example.com", "message": "hello"},
    "admin.smtp_new": lambda w: {
        "name": f"{A} relay 2",
        "host": f"smtp2.{A}.test",
        "from_email": f"noc@{A}.example.com",
    },
    "admin.api_key_create": lambda w: {"name": f"{A} key 2", "scope": "read"},
    "admin.webhook_endpoint_new": lambda w: {"name": f"{A} endpoint 2", "url": "http://127.0.0.1:9/new"},
    "admin.webhook_endpoint_edit": lambda w: {},
    "admin.smtp_edit": lambda w: {},
    "admin.heartbeat_create": lambda w: {"name": f"{A}-heartbeat-2", "interval_seconds": "3600", "grace_seconds": "0"},
    "admin.template_create": _unused_template_pair,
    "admin.template_override": lambda w: {},
    "admin.routing_preview": lambda w: {"event": w.of(A, "event")},
    "admin.incident_bulk": lambda w: {"action": "acknowledge"},
    "admin.schedule_create": lambda w: {"name": f"{A} rota 2", "time_zone": "UTC"},
    "admin.schedule_override_create": lambda w: {
        "starts_at": "2031-01-06T20:00",
        "ends_at": "2031-01-07T08:00",
        "force": "y",
    },
}


def _rules(app):
    return sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, sorted(rule.methods)))


def _int_args(rule) -> list[str]:
    return [name for name in rule.arguments if isinstance(rule._converters[name], NumberConverter)]


def _build(rule, values: dict) -> str:
    args = {name: STRING_ARGS.get(name, "x") for name in rule.arguments}
    args.update(values)
    return rule.build(args, append_unknown=False)[1]


def _own_ids(world: World, name: str) -> list[int]:
    """Rows of A (and the shared default templates) to fill a URL argument with, for A's own pages."""
    kind = PARAM_KIND[name]
    own = [world.of(A, kind)]
    if kind == "template":
        own.append(world.shared_template)
    if kind == "notification":
        own.append(world.of(A, "web_notification"))
    return own


def _variants(rule, world: World):
    """(url, foreign?) for each way of filling the rule: all of A's rows, and each argument in turn B's."""
    names = _int_args(rule)
    own = {name: world.of(A, PARAM_KIND[name]) for name in names}
    yield _build(rule, own), False
    for name in names:
        for foreign_id in world.foreign(PARAM_KIND[name]):
            yield _build(rule, {**own, name: foreign_id}), True


def _endpoint_of(app, url: str, method: str) -> str | None:
    try:
        endpoint, _ = app.url_map.bind("localhost").match(urlsplit(url).path, method=method)
    except HTTPException:
        return None
    return endpoint


class _Forms(HTMLParser):
    """The forms of a page as a browser would submit them (and every field name, submitted or not)."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form = self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            method = (a.get("method") or "get").lower()
            self._form = {"method": method, "action": a.get("action") or "", "data": {}, "names": set(), "fixed": set()}
            self.forms.append(self._form)
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._select["first"] is None:
                self._select["first"] = value
            if "selected" in a:
                self._select["chosen"].append(value)
        elif self._form is not None and a.get("name"):
            self._field(tag, a)

    def _field(self, tag: str, a: dict) -> None:
        name, data = a["name"], self._form["data"]
        self._form["names"].add(name)
        if "disabled" in a:
            self._form["fixed"].add(name)
            return
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "reset", "file") or (kind in ("checkbox", "radio") and "checked" not in a):
                return
            data.setdefault(name, []).append(a.get("value", "y"))
        elif tag == "select":
            self._select = {"name": name, "first": None, "chosen": [], "multiple": "multiple" in a}
        elif tag == "textarea":
            self._textarea = name
            data[name] = [""]

    def handle_data(self, text):
        if self._textarea is not None and self._form is not None:
            self._form["data"][self._textarea][0] += text

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select is not None:
            select, self._select = self._select, None
            chosen = select["chosen"] or ([] if select["multiple"] else [select["first"]])
            if self._form is not None:
                self._form["data"][select["name"]] = [v for v in chosen if v is not None]


def _forms(page_url: str, html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        form["action"] = urljoin("http://localhost" + page_url, form["action"] or page_url).removeprefix(
            "http://localhost"
        )
    return parser.forms


def _pages(app):
    return [r for r in _rules(app) if r.endpoint not in SKIP_ENDPOINTS and not r.rule.startswith("/api/v1/")]


def test_every_route_and_operation_is_covered(app, client):
    """Every page route's arguments are known here, and every API route is described by the OpenAPI document
    (which drives the API half of the matrix; webhook senders it leaves out are walked from the URL map)."""
    problems = []
    for rule in _pages(app):
        for name in rule.arguments:
            if name not in PARAM_KIND and name not in STRING_ARGS:
                problems.append(f"{rule.rule}: add {name!r} to PARAM_KIND (the kind of row it names) or STRING_ARGS")
        if not rule.endpoint.startswith("admin.") and rule.endpoint not in OPEN_ENDPOINTS:
            problems.append(f"{rule.rule} ({rule.endpoint}): classify it (admin page, or OPEN_ENDPOINTS)")
    described = {(op.method, op.path) for op in _operations(_document(client))}
    for rule in _rules(app):
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule
            for name in rule.arguments:
                path = path.replace(f"<int:{name}>", f"{{{name}}}").replace(f"<{name}>", f"{{{name}}}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                if (method, path) not in described and not path.startswith("/api/v1/webhooks/"):
                    problems.append(f"{method} {path}: not in the OpenAPI document, so the matrix cannot see it")
    assert not problems, "\n".join(problems)


def test_pages_refuse_another_customers_rows(app, world):
    callers = [signed_in(app, world.op_a), signed_in(app, world.viewer_a)]
    operator, viewer = callers
    admin = signed_in(app, world.admin)
    probe = Probe()
    read: set[str] = set()  # the query arguments the views read
    for rule in _pages(app):
        if rule.endpoint in OPEN_ENDPOINTS:
            if "GET" in rule.methods:
                for caller in callers:
                    probe.send(caller, "GET", _build(rule, {}))
            continue
        has_rows = bool(_int_args(rule))
        for method in sorted(rule.methods & {"GET", "POST"}):
            for url, foreign in _variants(rule, world):
                if has_rows and not foreign:
                    if method == "GET":  # A's own row: with each row-naming argument its view reads
                        read |= _list_page(probe, callers, url, world)
                    continue  # (its forms: the form attacks below)
                if has_rows:
                    for caller in callers:
                        probe.refused(caller, method, url, {403, 404}, data=_attack_form(world))
                    if method == "GET":
                        control = admin("GET", url)
                        if control.status_code != 200:
                            probe.fail(f"control: the admin gets {control.status_code} from {url}, not 200")
                elif method == "GET":
                    read |= _list_page(probe, callers, url, world)
                    if rule.endpoint not in NOTHING_OF_B and B not in admin("GET", url).get_data(as_text=True).lower():
                        probe.fail(f"control: the admin sees nothing of B on {url} (or add it to NOTHING_OF_B)")
                elif rule.endpoint not in OWN_ROWS_POSTS:
                    for caller in callers:
                        probe.refused(
                            caller, method, url, {400, 403, 404, 422}, form_error_ok=True, data=_attack_form(world)
                        )
    if not read & FOREIGN_ARGS.keys():
        probe.fail("no page read a row-naming argument: the recording of request.args is broken")
    _form_attacks(app, probe, operator, viewer, world)
    probe.assert_clean()


def _attack_form(world: World) -> dict:
    """Every field that can name a row, naming B's."""
    return {name: values(world)[0] for name, values in FOREIGN_FIELDS.items()} | {"body_text": "x", "label": "x"}


def _list_page(probe: Probe, callers, url: str, world: World) -> set[str]:
    """A page plainly, then with each row-naming argument its view reads; returns the arguments read."""
    seen: set[str] = set()
    for caller in callers:
        response = probe.send(caller, "GET", url)
        read = set(ARGS_READ)
        seen |= read
        if response is None or response.status_code != 200:
            continue
        for name in sorted(read - PLAIN_ARGS):
            if name not in FOREIGN_ARGS:
                probe.fail(f"{url} reads ?{name}=: add it to FOREIGN_ARGS (the rows it names) or PLAIN_ARGS")
                continue
            for value in FOREIGN_ARGS[name](world):
                probe.send(caller, "GET", url, query_string={name: value})
    return seen


def _form_attacks(app, probe: Probe, operator: Caller, viewer: Caller, world: World) -> None:
    """Each form A's operator is shown, sent with one row-naming field set to B's: refused (or ignored, with
    nothing changed); then sent as shown (plus BASE_FORMS), which must be accepted — the control."""
    seen = set()
    for rule in _pages(app):
        if "GET" not in rule.methods or rule.endpoint in OPEN_ENDPOINTS:
            continue
        names = _int_args(rule)
        fills = [dict(zip(names, ids, strict=True)) for ids in product(*(_own_ids(world, n) for n in names))]
        for fill in fills:
            page_url = _build(rule, fill)
            page = operator("GET", page_url)
            if page.status_code != 200:
                continue
            for form in _forms(page_url, page.get_data(as_text=True)):
                endpoint = _endpoint_of(app, form["action"], "POST") if form["method"] == "post" else None
                if endpoint is None or (endpoint, form["action"]) in seen:
                    continue
                seen.add((endpoint, form["action"]))
                row_fields = sorted(
                    n for n in form["names"] if n in ROW_NAMES or (n.endswith("_id") and n != "csrf_token")
                )
                unknown = [n for n in row_fields if n not in FOREIGN_FIELDS]
                if unknown:
                    probe.fail(f"{endpoint} ({form['action']}): add {unknown} to FOREIGN_FIELDS")
                if not row_fields:
                    continue
                if endpoint not in BASE_FORMS:
                    probe.fail(f"{endpoint} ({form['action']}): add the rest of a valid form to BASE_FORMS")
                    continue
                base = {**form["data"], **BASE_FORMS[endpoint](world)}
                for name in row_fields:
                    for value in FOREIGN_FIELDS.get(name, lambda w: [])(world):
                        if name in form["fixed"]:
                            probe.same_effect(operator, form["action"], base, {**base, name: value})
                            continue
                        probe.refused(
                            operator,
                            "POST",
                            form["action"],
                            {400, 403, 404, 422},
                            form_error_ok=True,
                            ignored_ok=True,
                            data={**base, name: value},
                        )
                probe.refused(viewer, "POST", form["action"], {403, 404}, data=base)
                probe.accepted(operator, "POST", form["action"], data=base)
    for endpoint in BASE_FORMS:
        if not any(e == endpoint for e, _ in seen):
            probe.fail(f"BASE_FORMS names {endpoint}, but no page shows A's operator its form")


# --- the API: operations from the OpenAPI document --------------------------------------------------------


def _document(client) -> dict:
    return client.get("/api/v1/openapi.json").json


@dataclass
class Operation:
    method: str
    path: str
    spec: dict
    params: list[dict]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def of(self, where: str) -> list[dict]:
        return [p for p in self.params if p["in"] == where]


def _operations(doc: dict) -> list[Operation]:
    found = []
    for path, item in doc["paths"].items():
        for method, spec in item.items():
            if method != "parameters":
                found.append(
                    Operation(method.upper(), path, spec, item.get("parameters", []) + spec.get("parameters", []))
                )
    return found


FOREIGN_QUERY: dict[str, Callable[[World], list]] = {
    "customer_id": lambda w: [w.b.id],
    "customer": lambda w: [w.b.id],
    "user_id": lambda w: [w.op_b.id, w.admin.id],
    "assignee": lambda w: [w.op_b.id],
    "ticket_id": lambda w: [w.of(B, "ticket")],
    "event_id": lambda w: w.foreign("event"),
    "event": lambda w: w.foreign("event"),
}
OWN_QUERY: dict[str, Callable[[World], object]] = {"event": lambda w: w.of(A, "event")}  # required ones
PLAIN_QUERY = {
    "limit",
    "status",
    "priority",
    "channel",
    "event_type",
    "severity",
    "month",
    "source",
    "ordering",
    "created_after",
    "created_before",
    "due_before",
    "due_after",
    "breached",
    "from",
    "to",
    "format",
    "state",
    "label",
    "paged_me",
    "unacknowledged",
    "order",
}
FOREIGN_PROPS: dict[str, Callable[[World], list]] = {
    "customer_id": lambda w: [w.b.id],
    "customer": lambda w: [w.b.id, "Qxbravo Ltd"],
    "user_id": lambda w: [w.op_b.id, w.admin.id],
    "assignee_id": lambda w: [w.op_b.id],
    "ticket": lambda w: [w.of(B, "ticket")],
}
SENDER_REFUSALS = {400, 401, 403, 415, 422}  # a webhook sender's refusals (no key opens these)
API_NOTHING_OF_B = {"GET /api/v1/auth/verify", "GET /api/v1/preferences/mine"}
PROP_ROW_NAMES = {"customer", "user", "ticket", "event", "endpoint", "assignee"}
# The rest of a body A may send (to A's row where the path names one): each field of FOREIGN_PROPS is set to
# B's in turn. An operation whose body has a row-naming field and no entry here fails the test.
BASE_BODIES: dict[str, Callable[[World], dict]] = {
    "POST /api/v1/auth/api-keys": lambda w: {"name": f"{A} key 3", "scopes": ["read"], "customer_id": w.a.id},
    "POST /api/v1/events": lambda w: {"title": f"{A} api event", "customer_id": w.a.id},
    "POST /api/v1/preferences": lambda w: {"user_id": w.op_a.id, "customer_id": w.a.id},
    "PATCH /api/v1/preferences/{pref_id}": lambda w: {"enable_aggregation": True},
    "PUT /api/v1/preferences/{pref_id}": lambda w: {"enabled_channels": ["email"]},
    "POST /api/v1/routing/preview": lambda w: {"event": {"type": "alert", "customer": w.a.id}},
    "POST /api/v1/smtp": lambda w: {
        "customer_id": w.a.id,
        "host": f"smtp3.{A}.test",
        "from_email": f"noc@{A}.example.com",
    },
    "PATCH /api/v1/smtp/{config_id}": lambda w: {"port": 2526},
    "PUT /api/v1/smtp/{config_id}": lambda w: {
        "customer_id": w.a.id,
        "host": f"smtp.{A}.test",
        "from_email": f"noc@{A}.example.com",
    },
    "POST /api/v1/tickets": lambda w: {"title": f"{A} api ticket", "customer_id": w.a.id, "assignee_id": w.op_a.id},
    "PATCH /api/v1/tickets/{ticket_id}": lambda w: {"description": f"{A} changed"},
    "PUT /api/v1/tickets/{ticket_id}": lambda w: {"title": f"{A} ticket", "priority": "high", "status": "open"},
}


def _schema(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema:
        merged: dict = {"type": "object", "properties": {}}
        for part in schema["allOf"]:
            merged["properties"].update(_schema(doc, part).get("properties", {}))
        return merged
    return schema


def _body_fields(doc: dict, op: Operation) -> list[tuple[str, ...]]:
    """Paths of the body's fields that are not objects themselves (nested objects walked)."""
    content = op.spec.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return []
    found = []

    def walk(schema: dict, prefix: tuple[str, ...]) -> None:
        for name, sub in _schema(doc, schema).get("properties", {}).items():
            sub = _schema(doc, sub)
            if sub.get("type") == "object" and "properties" in sub:
                walk(sub, (*prefix, name))
            else:
                found.append((*prefix, name))

    walk(content["schema"], ())
    return found


def _with(body: dict, path: tuple[str, ...], value) -> dict:
    out = json.loads(json.dumps(body))
    target = out
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = value
    return out


def _cursor(param: dict):
    if param["schema"].get("type") == "integer":
        return MAX_ROW_ID
    raw = json.dumps(["9999-12-31T00:00:00+00:00", MAX_ROW_ID]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fill(op: Operation, values: dict) -> str:
    path = op.path
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", str(value))
    return path


def api_callers(app, world: World) -> list[Caller]:
    """Every principal of A: keys of each scope (made by an admin), the admin-scope key its operator made
    (capped at write by its owner), and the operator's token."""
    callers = [
        key_caller(app, f"{scope}-a", [scope], customer=world.a, owner=world.admin)
        for scope in ("read", "write", "admin")
    ]
    callers.append(key_caller(app, "capped-a", ["admin"], customer=None, owner=world.op_a))
    callers.append(token_caller(app, world.op_a))
    return callers


def test_api_refuses_another_customers_rows(app, client, world):
    callers = api_callers(app, world)
    strongest = callers[2]  # A's admin-scope key: the control for bodies A may send
    admin = token_caller(app, world.admin)
    doc = _document(client)
    probe = Probe()
    described = {op.path for op in _operations(doc)}
    for rule in _rules(app):  # senders the document leaves out (Twilio's callbacks): the same check
        if rule.rule.startswith("/api/v1/webhooks/") and rule.rule not in described:
            path = re.sub(r"<int:\w+>", "1", rule.rule)  # a call's row, any: its signature is checked first
            for method in rule.methods & {"POST"}:
                probe.refused(callers[2], method, path, SENDER_REFUSALS, data={"customer_id": world.b.id})
    for op in _operations(doc):
        if op.path.startswith("/api/v1/webhooks/") and op.method != "GET":
            # Senders authenticate by their source's secret or token, never by a key; the customer is the source's.
            probe.refused(callers[2], op.method, op.path, SENDER_REFUSALS, json={"customer_id": world.b.id})
            continue
        if op.spec.get("security") == []:
            if op.method == "GET":
                probe.send(callers[0], "GET", op.path)
            else:
                probe.refused(
                    callers[0], op.method, op.path, {401}, json={"email": world.op_b.email, "password": "wrong-one"}
                )
            continue
        _api_operation(probe, doc, op, callers, strongest, admin, world)
    probe.assert_clean()


def _api_operation(probe, doc, op: Operation, callers, strongest, admin, world: World) -> None:
    path_names = [p["name"] for p in op.of("path")]
    for name in path_names:
        if name not in PARAM_KIND:
            probe.fail(f"{op.key}: add {name!r} to PARAM_KIND")
            return
    own_path = {name: world.of(A, PARAM_KIND[name]) for name in path_names}
    required = {p["name"]: OWN_QUERY[p["name"]](world) for p in op.of("query") if p.get("required")}
    base = BASE_BODIES[op.key](world) if op.key in BASE_BODIES else {}
    body = {"json": base} if op.method in ("POST", "PUT", "PATCH") else {}
    # 1. B's row (or the operations team's) named in the path: 404, or 403 for a scope too narrow.
    for name in path_names:
        for foreign_id in world.foreign(PARAM_KIND[name]):
            url = _fill(op, {**own_path, name: foreign_id})
            for caller in callers:
                probe.refused(caller, op.method, url, {403, 404}, query_string=required, **body)
            if op.method == "GET":
                control = admin("GET", url, query_string=required)
                if control.status_code != 200:
                    probe.fail(f"control: the admin gets {control.status_code} from GET {url}, not 200")
    # 2. Filters and cursors that name B's rows: no B row in the answer.
    url = _fill(op, own_path)
    if op.method == "GET":
        for param in op.of("query"):
            name = param["name"]
            if name == "cursor":
                values = [_cursor(param)]
            elif name in FOREIGN_QUERY:
                values = FOREIGN_QUERY[name](world)
            elif name in PLAIN_QUERY:
                continue
            else:
                probe.fail(f"{op.key}: add the query parameter {name!r} to FOREIGN_QUERY or PLAIN_QUERY")
                continue
            for value, caller in product(values, callers):
                probe.send(caller, "GET", url, query_string={**required, name: value})
        for caller in callers:
            probe.send(caller, "GET", url, query_string=required)
        answer = "" if path_names or op.key in API_NOTHING_OF_B else admin("GET", url).get_data(as_text=True)
        if answer and B not in answer.lower():
            probe.fail(f"control: the admin sees nothing of B from {op.key} (or add it to API_NOTHING_OF_B)")
    # 3. A body field naming B's row: 422 (or 403/404), nothing changed; the same body naming A's is accepted.
    fields = [
        f for f in _body_fields(doc, op) if f[-1] in FOREIGN_PROPS or f[-1] in PROP_ROW_NAMES or f[-1].endswith("_id")
    ]
    if not fields:
        return
    if op.key not in BASE_BODIES:
        probe.fail(f"{op.key}: its body names rows ({fields}); add the rest of a valid body to BASE_BODIES")
        return
    for path in fields:
        if path[-1] not in FOREIGN_PROPS:
            probe.fail(f"{op.key}: add the body field {'.'.join(path)!r} to FOREIGN_PROPS")
            continue
        for value, caller in product(FOREIGN_PROPS[path[-1]](world), callers):
            probe.refused(caller, op.method, url, {403, 404, 422}, json=_with(base, path, value))
    probe.accepted(strongest, op.method, url, json=base)


# --- the preference case of issue 13, and the owner's cap on a key ------------------------------------------


def test_a_customer_key_cannot_write_preferences_outside_its_customer(app, world):
    """The issue's case: a key of customer A (made by an admin) writing the preferences of users outside A —
    the admin's own by leaving user_id out, B's operator's, the admin's by id — is refused, nothing changed."""
    write_a = key_caller(app, "write-a", ["write"], customer=world.a, owner=world.admin)
    admin_a = key_caller(app, "admin-a", ["admin"], customer=world.a, owner=world.admin)
    probe = Probe()
    for caller in (write_a, admin_a):
        probe.refused(caller, "POST", "/api/v1/preferences", {403, 404, 422}, json={"enabled_channels": ["web"]})
        for user in (world.op_b, world.admin):
            probe.refused(
                caller,
                "POST",
                "/api/v1/preferences",
                {403, 404, 422},
                json={"user_id": user.id, "max_notifications_per_hour": 1},
            )
        for pref in world.foreign("preference"):
            probe.refused(caller, "PATCH", f"/api/v1/preferences/{pref}", {403, 404}, json={"enabled_channels": []})
            probe.refused(caller, "DELETE", f"/api/v1/preferences/{pref}", {403, 404})
        listed = probe.send(caller, "GET", "/api/v1/preferences")
        assert listed is not None
    probe.assert_clean()


def test_a_key_has_no_more_power_than_its_owner(app, world):
    """Principal.of_key: a key's scope is capped by its owner's role and its customers by the owner's, now."""
    capped = key_caller(app, "operator-admin-key", ["admin"], customer=None, owner=world.op_a)
    foreign = key_caller(app, "operator-b-key", ["write"], customer=world.b, owner=world.op_a)
    verify = capped("GET", "/api/v1/auth/verify").json
    assert (verify["scope"], verify["customer_ids"]) == ("write", [world.a.id])
    assert capped("GET", "/api/v1/auth/api-keys").status_code == 403
    assert foreign("GET", "/api/v1/auth/verify").json["customer_ids"] == []
    assert foreign("GET", "/api/v1/tickets").json["items"] == []
    assert foreign("GET", f"/api/v1/tickets/{world.of(B, 'ticket')}").status_code == 404
    world.op_a.role = Role.VIEWER  # demoted: every key the operator made drops to read at once
    db.session.commit()
    assert capped("GET", "/api/v1/auth/verify").json["scope"] == "read"
    refused = capped("PATCH", f"/api/v1/tickets/{world.of(A, 'ticket')}", json={"title": "x"})
    assert refused.status_code == 403
