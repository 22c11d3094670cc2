"""An API key is bound to its owner's current rights: demoting the owner or removing them from a customer
narrows the key at once (through the same admin page that makes the change), and deactivation revokes it."""

from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.models import Role, Ticket
from webapp.services.integrations import api_keys

pytestmark = pytest.mark.usefixtures("each_request_loads_its_user")


def _key(owner, *, scopes, customer=None) -> dict:
    _, plain = api_keys.create_key(name="ci", scopes=scopes, customer=customer, expires_days=None, created_by=owner)
    db.session.commit()
    return {"X-API-Key": plain}


def _edit(client, user, *, role: str, customers) -> None:
    answer = client.post(
        f"/users/{user.id}/edit",
        data={"email": user.email, "name": user.name, "role": role, "customers": [c.id for c in customers]},
    )
    assert answer.status_code == 302, answer.text


def test_demoting_the_owner_takes_the_write_scope_from_their_key_at_once(
    app, client, login_as, make_user, customer, make_ticket
):
    owner = make_user("operator", customers=[customer])
    key = _key(owner, scopes=["write"], customer=customer)
    ticket = make_ticket(customer=customer)
    assert client.post("/api/v1/tickets", json={"title": "Before"}, headers=key).status_code == 201

    login_as("admin", customers=[])
    _edit(client, owner, role="viewer", customers=[customer])

    refused = client.post("/api/v1/tickets", json={"title": "After"}, headers=key)
    assert refused.status_code == 403
    assert client.post(f"/api/v1/tickets/{ticket.id}/ack", headers=key).status_code == 403
    assert client.get(f"/api/v1/tickets/{ticket.id}", headers=key).status_code == 200  # reading stays
    assert client.get("/api/v1/auth/verify", headers=key).json["scope"] == "read"


def test_removing_the_owner_from_a_customer_takes_that_customer_from_their_key(
    app, client, login_as, make_user, customer, make_customer, make_ticket
):
    other = make_customer("Globex")
    owner = make_user("operator", customers=[customer, other])
    scoped = _key(owner, scopes=["write"], customer=customer)
    unscoped = _key(owner, scopes=["read"])
    ticket = make_ticket(customer=customer, title="Acme's secret outage")
    for key in (scoped, unscoped):
        assert client.get(f"/api/v1/tickets/{ticket.id}", headers=key).status_code == 200

    login_as("admin", customers=[])
    _edit(client, owner, role="operator", customers=[other])

    for key in (scoped, unscoped):
        assert client.get(f"/api/v1/tickets/{ticket.id}", headers=key).status_code == 404
        listed = client.get("/api/v1/tickets", headers=key)
        assert "Acme's secret outage" not in listed.text
    refused = client.post("/api/v1/tickets", json={"title": "Sneaked in"}, headers=scoped)
    assert refused.status_code in (403, 404, 422), refused.text
    assert db.session.scalar(db.select(Ticket.id).where(Ticket.title == "Sneaked in")) is None


def test_an_admin_demoted_to_operator_keeps_no_admin_power_in_a_global_key(
    app, client, login_as, make_user, customer, make_customer, make_ticket
):
    other = make_customer("Globex")
    owner = make_user(Role.ADMIN, customers=[])
    key = _key(owner, scopes=["admin"])
    hidden = make_ticket(customer=other, title="Globex only")
    assert client.get(f"/api/v1/tickets/{hidden.id}", headers=key).status_code == 200
    assert client.get("/api/v1/auth/api-keys", headers=key).status_code == 200

    login_as("admin", customers=[])
    _edit(client, owner, role="operator", customers=[customer])

    assert client.get(f"/api/v1/tickets/{hidden.id}", headers=key).status_code == 404
    assert client.get("/api/v1/auth/api-keys", headers=key).status_code == 403
    made = client.post("/api/v1/auth/api-keys", json={"name": "escalate", "scopes": ["admin"]}, headers=key)
    assert made.status_code == 403


def test_deactivating_the_owner_revokes_the_key(app, client, login_as, make_user, customer):
    owner = make_user("operator", customers=[customer])
    key = _key(owner, scopes=["read"], customer=customer)
    assert client.get("/api/v1/tickets", headers=key).status_code == 200
    login_as("admin", customers=[])
    assert client.post(f"/users/{owner.id}/deactivate").status_code == 302
    assert client.get("/api/v1/tickets", headers=key).status_code == 401
