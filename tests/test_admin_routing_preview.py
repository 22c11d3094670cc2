"""/routing/preview: the dry run in the browser's form — decisions shown, bad input beside its field, nothing stored."""

from __future__ import annotations

import re

from tests.conftest import load_fixture
from tests.routing_helpers import fire
from webapp.extensions import db
from webapp.models import Event, Notification

PAGE = "/routing/preview"
FIRING = load_fixture("webhooks/alertmanager_firing.json").decode()


def counts() -> tuple[int, int]:
    db.session.expire_all()
    return db.session.query(Event).count(), db.session.query(Notification).count()


def decision_rows(html: str) -> list[str]:
    table = re.search(r'<table[^>]*id="routing-decisions".*?</table>', html, re.S)
    assert table, "no decisions table"
    cells = re.findall(r"<tr class=\"decision-[a-z]+\">(.*?)</tr>", table.group(0), re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in cells]


def test_admin_sees_who_would_be_paged_and_nothing_is_stored_or_sent(client, login_as, make_user, twilio):
    paged = make_user("admin", name="Paged Admin", phone="+14155550101", customers=[])
    login_as("admin", customers=[])
    before = counts()
    page = client.post(PAGE, data={"source": "alertmanager", "payload": FIRING})
    assert page.status_code == 200, page.text
    assert counts() == before and twilio.received == []
    assert "DiskFull" in page.text
    rows = decision_rows(page.text)
    assert rows[0].startswith(f"Paged Admin {paged.email} · admin sms …0101 pending ")  # the number is masked
    assert "the admin role&#39;s default" in rows[0]
    me = [r for r in rows if not r.startswith("Paged Admin")]
    assert len(me) == 1 and " sms suppressed never no phone number: add one on the user&#39;s page" in me[0]


def test_the_same_body_after_it_arrived_is_a_redelivery_that_notifies_nobody(client, login_as, make_user):
    make_user("admin", phone="+14155550101", customers=[])
    login_as("admin", customers=[])
    real = client.post(
        "/api/v1/webhooks/alertmanager",
        data=FIRING,
        headers={"Authorization": "Bearer test-alert-token"},
        content_type="application/json",
    )
    assert real.status_code == 200
    page = client.post(PAGE, data={"source": "alertmanager", "payload": FIRING})
    assert f"Already received as event #{real.json['event_ids'][0]}" in page.text
    assert 'id="routing-decisions"' not in page.text


def test_bad_json_and_refused_bodies_are_shown_next_to_the_field(client, login_as):
    login_as("admin", customers=[])
    before = counts()
    bad = client.post(PAGE, data={"source": "alertmanager", "payload": '{"alerts": ['})
    assert bad.status_code == 422
    assert re.search(r'field-error">Not JSON: [^<]+', bad.text)
    assert "{&#34;alerts&#34;: [" in bad.text or "{&quot;alerts&quot;: [" in bad.text  # what was typed is kept
    refused = client.post(PAGE, data={"source": "alertmanager", "payload": '{"alerts": "nope"}'})
    assert refused.status_code == 422
    assert re.search(
        r"field-error\">[^<]*Not an Alertmanager payload: &#39;alerts&#39; must be a non-empty list", refused.text
    )
    unknown = client.post(PAGE, data={"source": "smoke-signals", "payload": "{}"})
    assert unknown.status_code == 422 and "Not a valid choice" in unknown.text
    empty = client.post(PAGE, data={"source": "", "payload": ""})
    assert empty.status_code == 422
    assert "Pick the webhook&#39;s source" in empty.text and "Paste the webhook body" in empty.text
    assert counts() == before


def test_viewers_may_not_preview(client, login_as, customer):
    login_as("viewer", customers=[customer])
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"source": "alertmanager", "payload": FIRING}).status_code == 403
    assert "Routing preview" not in client.get("/").text


def test_an_operator_previews_only_their_customers_events(client, login_as, customer, make_customer, make_user):
    other = make_customer("Other Co")
    theirs = fire(customer=other, title="OtherDisk")
    mine = fire(customer=customer, title="MyDisk", severity="critical")
    make_user("operator", name="Home Operator", customers=[customer])
    login_as("operator", customers=[customer])
    assert "Routing preview" in client.get("/").text
    events = re.search(r'<select[^>]*name="event".*?</select>', client.get(PAGE).text, re.S).group(0)
    assert "MyDisk" in events and "OtherDisk" not in events
    assert client.post(PAGE, data={"event": theirs.id}).status_code == 422  # not among the choices

    nobody = client.post(PAGE, data={"source": "alertmanager", "payload": FIRING})
    assert nobody.status_code == 422 and "This event names no customer: pick one of yours." in nobody.text
    refused = client.post(PAGE, data={"source": "alertmanager", "payload": FIRING, "customer": other.id})
    assert refused.status_code == 422

    before = counts()
    picked = client.post(PAGE, data={"event": mine.id})
    assert picked.status_code == 200 and "MyDisk" in picked.text
    as_customer = client.post(PAGE, data={"source": "alertmanager", "payload": FIRING, "customer": customer.id})
    assert as_customer.status_code == 200 and "DiskFull" in as_customer.text
    assert counts() == before
    assert any(r.startswith("Home Operator") for r in decision_rows(as_customer.text)), as_customer.text[-3000:]


def test_the_preview_form_needs_its_csrf_token(make_app, database, make_user):
    from tests.conftest import PASSWORD, _reset

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        _reset(database["seeds"])
        admin = make_user("admin", customers=[])
        client = app.test_client()
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token})
        assert client.post(PAGE, data={"source": "alertmanager", "payload": FIRING}).status_code == 400
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', client.get(PAGE).text).group(1)
        ok = client.post(PAGE, data={"source": "alertmanager", "payload": FIRING, "csrf_token": token})
        assert ok.status_code == 200 and "DiskFull" in ok.text


def test_everyone_of_the_customer_is_listed_with_why_those_not_notified_are_not(client, login_as, make_user, customer):
    make_user("operator", name="Olga Oncall", phone="+14155550101", customers=[customer])
    make_user("viewer", name="Vic Viewer", phone="+14155550102", customers=[customer])
    make_user("operator", name="Dee Deactivated", active=False, customers=[customer])
    login_as("operator", name="Me Myself", customers=[customer])
    page = client.post(PAGE, data={"source": "alertmanager", "payload": FIRING, "customer": customer.id})
    assert page.status_code == 200, page.text
    table = re.search(r'<table[^>]*id="routing-decisions".*?</table>', page.text, re.S).group(0)
    passed = re.findall(r'<tr class="decision-not-notified">(.*?)</tr>', table, re.S)
    passed = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in passed]
    vic = [row for row in passed if row.startswith("Vic Viewer")]
    assert any("sms not notified never no SMS for a critical alert" in row for row in vic), passed
    assert any(row.startswith("Dee Deactivated") and "the user is deactivated" in row for row in passed), passed
    assert "Olga Oncall" in table and not any(row.startswith("Olga Oncall") for row in passed)  # she is paged
