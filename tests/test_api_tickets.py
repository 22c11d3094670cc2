"""/api/v1/tickets: auth, customer scoping, validation, filters, keyset pages, rate limits."""

from __future__ import annotations

import pytest

from webapp.api.access import new_key
from webapp.extensions import db
from webapp.models import ApiKey, AuditLog, Event, Priority, Role, SlaPolicy, Ticket, TicketStatus, utcnow
from webapp.security import hash_api_key


@pytest.fixture
def make_key(app, make_user):
    def make(*, scopes=("write",), customer=None):
        owner = make_user(Role.ADMIN, customers=[])
        key, prefix = new_key()
        db.session.add(
            ApiKey(
                name="t",
                prefix=prefix,
                key_hash=hash_api_key(key),
                scopes=list(scopes),
                customer_id=customer.id if customer else None,
                created_by_id=owner.id,
            )
        )
        db.session.commit()
        return {"X-API-Key": key}

    return make


@pytest.fixture
def other(make_customer):
    return make_customer("Globex")


def test_create_computes_the_deadline_and_returns_the_ticket(client, customer, make_key, make_user):
    db.session.add(SlaPolicy(customer_id=customer.id, priority=Priority.HIGH, resolution_minutes=120))
    db.session.commit()
    olga = make_user(Role.OPERATOR, name="Olga", customers=[customer])
    headers = make_key(customer=customer)
    response = client.post(
        "/api/v1/tickets", json={"title": "VPN down", "priority": "high", "assignee_id": olga.id}, headers=headers
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["key"] == f"OPS-{body['id']}" and body["customer_id"] == customer.id
    assert body["assignee_id"] == olga.id and body["due_at"] is not None and body["breached"] is False
    assert response.headers["Location"] == f"/api/v1/tickets/{body['id']}"
    detail = client.get(response.headers["Location"], headers=headers).json
    assert detail["timeline"][0]["body"] == "Ticket created from api"
    assert db.session.scalar(db.select(Event.event_type).where(Event.ticket_id == body["id"])) == "ticket_created"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "x", "priority": "asap"}, "priority"),
        ({"title": "x", "assignee_id": "me"}, "assignee_id"),
        ({"title": "x", "colour": "red"}, "colour"),
        ({"title": "x", "assignee_id": 999}, "assignee_id"),
    ],
)
def test_create_refuses_bad_fields_and_writes_nothing(client, customer, make_key, payload, field):
    response = client.post("/api/v1/tickets", json=payload, headers=make_key(customer=customer))
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0


def test_bad_bodies_are_json_errors(client, customer, make_key):
    headers = make_key(customer=customer)
    assert client.post("/api/v1/tickets", data="title=x", headers=headers).status_code == 415
    bad = client.post("/api/v1/tickets", data="{", headers={**headers, "Content-Type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json["error"]["message"]


def test_auth_and_scope(client, customer, make_key):
    assert client.get("/api/v1/tickets").status_code == 401
    read_only = make_key(scopes=["read"], customer=customer)
    assert client.get("/api/v1/tickets", headers=read_only).status_code == 200
    refused = client.post("/api/v1/tickets", json={"title": "x"}, headers=read_only)
    assert refused.status_code == 403 and "write" in refused.json["error"]["message"]


def test_another_customers_ticket_is_invisible(client, customer, other, make_key, make_ticket):
    theirs = make_ticket(customer=other, title="Globex secret")
    headers = make_key(customer=customer)
    assert client.get(f"/api/v1/tickets/{theirs.id}", headers=headers).status_code == 404
    assert client.patch(f"/api/v1/tickets/{theirs.id}", json={"title": "x"}, headers=headers).status_code == 404
    assert client.delete(f"/api/v1/tickets/{theirs.id}", headers=headers).status_code == 404
    assert client.get("/api/v1/tickets", headers=headers).json["items"] == []
    refused = client.post("/api/v1/tickets", json={"title": "x", "customer_id": other.id}, headers=headers)
    assert refused.status_code == 422 and "customer_id" in refused.json["error"]["fields"]
    db.session.expire_all()
    assert db.session.get(Ticket, theirs.id).title == "Globex secret"


def test_list_filters_and_keyset_pages(client, customer, other, make_key, make_ticket, make_user):
    olga = make_user(Role.OPERATOR, customers=[customer])
    now = utcnow()
    made = [make_ticket(customer=customer, title=f"T{n}") for n in range(5)]
    made[0].priority, made[0].status, made[0].assignee_id = Priority.URGENT, TicketStatus.PENDING, olga.id
    made[1].breached_at, made[1].due_at = now, now
    make_ticket(customer=other, title="theirs")
    db.session.commit()
    headers = make_key()  # every customer
    ids = lambda query: [t["id"] for t in client.get(f"/api/v1/tickets?{query}", headers=headers).json["items"]]  # noqa: E731
    assert ids("priority=urgent") == [made[0].id]
    assert ids("status=pending,resolved") == [made[0].id]
    assert ids(f"assignee={olga.id}") == [made[0].id]
    assert ids("breached=true") == [made[1].id]
    assert ids(f"customer={customer.id}&breached=false") == [t.id for t in reversed(made) if t is not made[1]]
    headers = make_key()  # a fresh budget of 10 requests a minute
    first = client.get("/api/v1/tickets?limit=2", headers=headers).json
    second = client.get(f"/api/v1/tickets?limit=2&cursor={first['next_cursor']}", headers=headers).json
    third = client.get(f"/api/v1/tickets?limit=2&cursor={second['next_cursor']}", headers=headers).json
    seen = [t["id"] for page in (first, second, third) for t in page["items"]]
    assert len(seen) == 6 and len(set(seen)) == 6 and third["next_cursor"] is None
    headers = make_key()
    for query, field in (
        ("priority=asap", "priority"),
        ("limit=0", "limit"),
        ("due_before=tomorrow", "due_before"),
        ("breached=maybe", "breached"),
        ("cursor=-1", "cursor"),
    ):
        response = client.get(f"/api/v1/tickets?{query}", headers=headers)
        assert response.status_code == 400 and field in response.json["error"]["fields"], query


def test_due_filters(client, customer, make_key, make_ticket):
    from datetime import timedelta

    now = utcnow()
    soon = make_ticket(customer=customer, title="soon", due_at=now + timedelta(hours=1))
    later = make_ticket(customer=customer, title="later", due_at=now + timedelta(days=2))
    headers = make_key(customer=customer)
    cut = (now + timedelta(hours=12)).isoformat()
    before = client.get("/api/v1/tickets", query_string={"due_before": cut}, headers=headers).json["items"]
    after = client.get("/api/v1/tickets", query_string={"due_after": cut}, headers=headers).json["items"]
    assert [t["id"] for t in before] == [soon.id]
    assert [t["id"] for t in after] == [later.id]


def test_put_patch_and_delete(client, customer, make_key, make_ticket, make_user):
    olga = make_user(Role.OPERATOR, name="Olga", customers=[customer])
    ticket = make_ticket(customer=customer, title="Old")
    headers = make_key(customer=customer)
    url = f"/api/v1/tickets/{ticket.id}"
    incomplete = client.put(url, json={"title": "New"}, headers=headers)
    assert incomplete.status_code == 422 and set(incomplete.json["error"]["fields"]) == {"priority", "status"}
    full = client.put(url, json={"title": "New", "priority": "high", "status": "pending"}, headers=headers)
    assert full.status_code == 200 and full.json["status"] == "pending" and full.json["priority"] == "high"
    patched = client.patch(url, json={"assignee_id": olga.id}, headers=headers)
    assert patched.json["assignee_id"] == olga.id and patched.json["title"] == "New"
    moved = client.patch(url, json={"customer_id": customer.id + 1}, headers=headers)
    assert moved.status_code == 422
    timeline = [e["body"] for e in client.get(url, headers=headers).json["timeline"]]
    assert "Status open → pending" in timeline and "Assigned to Olga" in timeline
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert db.session.scalar(db.select(AuditLog.action).where(AuditLog.action == "ticket.delete")) == "ticket.delete"


def test_rate_limits_answer_429_with_retry_after_per_key(make_app, customer, make_key):
    app = make_app(API_TICKETS_LIST_RATE_LIMIT="3 per minute", API_TICKETS_CREATE_RATE_LIMIT="2 per minute")
    client = app.test_client()
    first, second = make_key(customer=customer), make_key(customer=customer)
    statuses = [client.get("/api/v1/tickets", headers=first).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/api/v1/tickets", headers=first)
    assert limited.status_code == 429 and limited.is_json
    assert limited.json["error"]["code"] == "too_many_requests"
    assert int(limited.headers["Retry-After"]) > 0
    assert client.get("/api/v1/tickets", headers=second).status_code == 200  # another key, its own budget
    creates = [client.post("/api/v1/tickets", json={"title": "x"}, headers=first).status_code for _ in range(3)]
    assert creates == [201, 201, 429]


def test_default_limits_are_the_seeds(app):
    assert app.config["API_TICKETS_LIST_RATE_LIMIT"] == "10 per minute"
    assert app.config["API_TICKETS_CREATE_RATE_LIMIT"] == "5 per minute"
