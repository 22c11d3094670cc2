"""Customer pages: who may list, create, edit and change members; forms keep input; audit."""

from __future__ import annotations

import sqlalchemy as sa

from tests.admin_world import QueryCounter
from webapp.extensions import db
from webapp.models import AuditLog, Customer


def test_admin_creates_a_customer_and_the_audit_log_says_who_and_from_where(client, login_as):
    admin = login_as("admin")
    response = client.post("/customers/new", data={"name": "Globex", "timezone": "Europe/Paris"})
    assert response.status_code == 302
    created = db.session.scalar(sa.select(Customer).where(Customer.name == "Globex"))
    assert created.timezone == "Europe/Paris"
    page = client.get(response.headers["Location"])
    assert "Globex" in page.text and "Customer Globex created." in page.text
    row = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "customer.create"))
    assert (row.actor_id, row.target_id, row.ip_address) == (admin.id, created.id, "127.0.0.1")


def test_a_duplicate_name_is_refused_next_to_the_field_keeping_the_input(client, login_as, customer):
    login_as("admin")
    response = client.post("/customers/new", data={"name": "acme corp", "timezone": "Asia/Tokyo"})
    assert response.status_code == 400
    assert "already exists" in response.text
    assert 'value="acme corp"' in response.text
    assert '<option selected value="Asia/Tokyo">' in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 1


def test_an_unknown_time_zone_is_refused(client, login_as):
    login_as("admin")
    response = client.post("/customers/new", data={"name": "Initech", "timezone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Pick a time zone from the list" in response.text
    assert db.session.scalar(sa.select(Customer).where(Customer.name == "Initech")) is None


def test_only_admins_create_customers(client, login_as):
    login_as("operator")
    assert client.get("/customers/new").status_code == 403
    assert client.post("/customers/new", data={"name": "Sneaky", "timezone": "UTC"}).status_code == 403
    assert db.session.scalar(sa.select(Customer).where(Customer.name == "Sneaky")) is None


def test_operator_edits_own_customer_but_not_anothers(client, login_as, customer, make_customer):
    other = make_customer("Umbrella")
    login_as("operator")  # member of Acme Corp
    ok = client.post(f"/customers/{customer.id}/edit", data={"name": "Acme Ltd", "timezone": "UTC", "is_active": "y"})
    assert ok.status_code == 302
    assert db.session.get(Customer, customer.id).name == "Acme Ltd"
    refused = client.post(f"/customers/{other.id}/edit", data={"name": "Mine now", "timezone": "UTC"})
    assert refused.status_code == 404
    assert db.session.get(Customer, other.id).name == "Umbrella"


def test_viewer_sees_the_customer_but_cannot_edit(client, login_as, customer):
    login_as("viewer")
    page = client.get(f"/customers/{customer.id}")
    assert page.status_code == 200 and "Acme Corp" in page.text
    assert "Edit customer" not in page.text
    assert client.post(f"/customers/{customer.id}/edit", data={"name": "X", "timezone": "UTC"}).status_code == 403
    assert db.session.get(Customer, customer.id).name == "Acme Corp"


def test_operator_lists_only_their_customers(client, login_as, make_customer):
    make_customer("Hidden Co")
    login_as("operator")
    page = client.get("/customers")
    assert "Acme Corp" in page.text and "Hidden Co" not in page.text


def test_admin_adds_and_removes_a_member(client, login_as, customer, make_customer, make_user):
    login_as("admin")
    other = make_customer("Globex")
    bob = make_user("viewer", email="bob@example.com", name="Bob", customers=[])
    response = client.post(f"/customers/{other.id}/members", data={"email": "  BOB@example.com "})
    assert response.status_code == 302
    assert [c.name for c in db.session.get(type(bob), bob.id).customers] == ["Globex"]
    unknown = client.post(f"/customers/{other.id}/members", data={"email": "nobody@example.com"})
    assert unknown.status_code == 400 and "create the user first" in unknown.text
    assert client.post(f"/customers/{other.id}/members/{bob.id}/remove").status_code == 302
    db.session.expire_all()
    assert db.session.get(type(bob), bob.id).customers == []


def test_operator_cannot_change_members(client, login_as, customer, make_user):
    login_as("operator")
    bob = make_user("viewer", email="bob@example.com", customers=[])
    assert client.post(f"/customers/{customer.id}/members", data={"email": "bob@example.com"}).status_code == 403
    assert db.session.get(type(bob), bob.id).customers == []


def test_the_list_costs_the_same_few_queries_at_any_length(client, login_as, make_customer, make_user):
    login_as("admin")
    for n in range(3):
        make_customer(f"Small {n}")
    with QueryCounter() as few:
        assert client.get("/customers").status_code == 200
    for n in range(60):
        customer = make_customer(f"Big {n}")
        make_user("viewer", customers=[customer])
    with QueryCounter() as many:
        page = client.get("/customers")
    assert "Older →" in page.text  # 64 customers: a second page
    assert many.count == few.count
    second = client.get("/customers?after=" + page.text.split("after=")[1].split('"')[0])
    assert "Big 59" in second.text and "Small 0" not in second.text
