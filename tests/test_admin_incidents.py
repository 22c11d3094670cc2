"""The incident pages: the console (/incidents: filters, orders, keyset pages, bulk acknowledge / resolve), one
incident's page (labels, links, timeline, who was paged and why another person was not, acknowledge / resolve /
reopen), and acknowledging from the dashboard and the inbox — each of which stops the escalation."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import count

import pytest

from tests.admin_world import QueryCounter
from webapp.extensions import db
from webapp.models import (
    Event,
    EventStatus,
    Incident,
    IncidentState,
    Notification,
    Priority,
    Role,
    Severity,
    SlaPolicy,
    utcnow,
)
from webapp.services.events import escalation, ingest
from webapp.services.inbound import acks
from webapp.sources.normalised import NormalisedEvent

_keys = count(1)


def fire(
    customer,
    *,
    title="DiskFull",
    severity=Severity.CRITICAL,
    labels=None,
    source="alertmanager",
    now=None,
    data=None,
) -> Incident:
    """One alert firing through ingest (as a webhook would): its incident, its pages routed."""
    key = f"fp-{next(_keys)}"
    item = NormalisedEvent(
        source=source,
        dedup_key=f"{key}@start",
        status=EventStatus.FIRING,
        severity=severity,
        title=title,
        body=f"{title} body",
        labels=labels if labels is not None else {"alertname": title, "instance": "db-1", "service": "storage"},
        data=data or {},
        customer_id=customer.id if customer is not None else None,
        incident_key=key,
    )
    result = ingest.ingest([item], now=now or utcnow())
    db.session.commit()
    return db.session.get(Incident, result.events[0].incident_id)


def ids_on(page_text: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="incident-(\d+)"', page_text)]


@pytest.fixture
def escalating(customer):
    db.session.add(
        SlaPolicy(
            customer_id=customer.id,
            priority=Priority.URGENT,  # a critical incident's policy
            resolution_minutes=60,
            escalation_minutes=30,
            escalation_interval_minutes=15,
            escalation_limit=2,
        )
    )
    db.session.commit()


def escalation_steps() -> list[Event]:
    return list(db.session.scalars(db.select(Event).where(Event.source == "escalation")))


# --- the console -------------------------------------------------------------------------------------------


def test_console_is_first_in_the_menu_and_shows_each_incidents_row(client, login_as, customer, make_user):
    make_user("operator", name="Paula Paged", phone="+14155550101", customers=[customer])
    login_as("operator", name="Oscar Operator", customers=[customer])
    one = fire(customer, title="DiskFull", labels={"alertname": "DiskFull", "instance": "db-1", "service": "storage"})
    two = fire(customer, title="DiskFull", labels={"alertname": "DiskFull", "instance": "db-2", "service": "storage"})
    client.post(f"/incidents/{two.id}/ack", data={"via": "web"})

    page = client.get("/incidents")
    assert page.status_code == 200
    menu = page.text.split('class="navbar-nav me-auto menu"')[1].split("</ul>")[0]
    assert re.findall(r'class="nav-link[^"]*"\s+href="([^"]+)"', menu)[0] == "/incidents"
    row_one = page.text.split(f'id="incident-{one.id}"')[1].split("</tr>")[0]
    row_two = page.text.split(f'id="incident-{two.id}"')[1].split("</tr>")[0]
    assert "instance=db-1" in row_one and "instance=db-2" in row_two  # two firings of one name told apart
    assert "service=storage" in row_one and "critical" in row_one and "triggered" in row_one
    assert "Paula Paged" in row_one and "Oscar Operator" in row_one  # both were paged
    assert "acknowledged" in row_two and 'class="acked">Oscar Operator<' in row_two
    assert 'class="acked">—<' in row_one
    assert ids_on(page.text) == [two.id, one.id]  # newest first


def test_console_filters(client, login_as, customer, make_customer, make_user):
    other = make_customer("Second Customer")
    login_as("operator", name="Me", customers=[customer, other])
    make_user("operator", name="Someone Else", customers=[other])
    critical = fire(customer, title="DiskFull", labels={"instance": "db-1", "service": "storage"})
    high = fire(other, title="Latency", severity=Severity.HIGH, labels={"instance": "web-1", "service": "checkout"})
    low = fire(other, title="Noise", severity=Severity.LOW, labels={"service": "checkout"}, source="generic")
    resolved = fire(customer, title="Gone")
    client.post(f"/incidents/{resolved.id}/resolve")
    acked = fire(customer, title="Taken")
    client.post(f"/incidents/{acked.id}/ack")

    def shown(**args) -> set[int]:
        answer = client.get("/incidents", query_string=args)
        assert answer.status_code == 200
        return set(ids_on(answer.text))

    assert shown() == {critical.id, high.id, low.id, acked.id}  # open by default
    assert shown(state="all") == {critical.id, high.id, low.id, acked.id, resolved.id}
    assert shown(state="resolved") == {resolved.id}
    assert shown(state="acknowledged") == {acked.id}
    assert shown(unacked="y") == {critical.id, high.id, low.id}
    assert shown(severity="high") == {high.id}
    assert shown(customer=str(other.id)) == {high.id, low.id}
    assert shown(source="generic") == {low.id}
    assert shown(label="checkout") == {high.id, low.id}
    assert shown(label="web-1") == {high.id}
    # paged me: an operator is paged by alerts of high severity and above (web, email; SMS when critical)
    assert shown(mine="y") == {critical.id, high.id, acked.id}
    # bad values are a field error, not a 500, and the list falls back to its default
    answer = client.get("/incidents", query_string={"severity": "apocalyptic", "customer": "x'; drop"})
    assert answer.status_code == 200 and "Not a valid choice" in answer.text


def test_most_severe_first_and_keyset_pages(app, client, login_as, customer):
    app.config["PER_PAGE"] = 2
    login_as("admin", customers=[])
    made = [
        fire(customer, title=f"Alert {i}", severity=severity, labels={})
        for i, severity in enumerate(
            [Severity.HIGH, Severity.CRITICAL, Severity.LOW, Severity.CRITICAL, Severity.HIGH], start=1
        )
    ]
    expected = sorted(made, key=lambda i: (i.severity_rank, i.id), reverse=True)
    seen, url = [], "/incidents?order=severity"
    while url:
        answer = client.get(url)
        assert answer.status_code == 200
        seen += ids_on(answer.text)
        found = re.search(r'href="([^"]+)" rel="next"', answer.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == [i.id for i in expected]
    # the newest-first order pages the same way; and back up from the last page
    answer = client.get("/incidents")
    first = ids_on(answer.text)
    second_url = re.search(r'href="([^"]+)" rel="next"', answer.text).group(1).replace("&amp;", "&")
    second = client.get(second_url)
    assert first == [made[4].id, made[3].id] and ids_on(second.text) == [made[2].id, made[1].id]
    back = re.search(r'href="([^"]+)" rel="prev"', second.text).group(1).replace("&amp;", "&")
    assert ids_on(client.get(back).text) == first
    # a bound that is not one is ignored, not a 500
    assert client.get("/incidents?order=severity&before=9.x").status_code == 200


def test_a_page_costs_the_same_statements_whatever_its_length(app, client, login_as, customer, make_user):
    make_user("operator", phone="+14155550101", customers=[customer])
    login_as("admin", customers=[])
    for i in range(3):
        fire(customer, title=f"Alert {i}")

    def statements(per_page: int) -> int:
        app.config["PER_PAGE"] = per_page
        with QueryCounter() as counter:
            assert client.get("/incidents").status_code == 200
        return counter.count

    small = statements(1)
    for i in range(12):
        fire(customer, title=f"More {i}")
    assert statements(15) == small


def test_bulk_acknowledge_and_resolve(client, login_as, customer):
    login_as("operator", customers=[customer])
    one, two, three = (fire(customer, title=f"Alert {i}") for i in range(3))
    answer = client.post(
        "/incidents/bulk", data={"action": "acknowledge", "incident": [str(one.id), str(two.id)], "next": "/incidents"}
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/incidents"
    db.session.expire_all()
    assert (one.state, two.state, three.state) == ("acknowledged", "acknowledged", "triggered")
    assert one.acknowledged_via == "console"
    assert "2 incidents acknowledged" in client.get("/incidents").text
    client.post("/incidents/bulk", data={"action": "resolve", "incident": [str(two.id), str(three.id)]})
    db.session.expire_all()
    assert (one.state, two.state, three.state) == ("acknowledged", "resolved", "resolved")
    # nothing ticked, or no action: said so, nothing changes
    assert client.post("/incidents/bulk", data={"action": "resolve"}).status_code == 302
    assert client.post("/incidents/bulk", data={"incident": [str(one.id)]}).status_code == 302
    assert client.post("/incidents/bulk", data={"action": "resolve", "incident": ["x"]}).status_code == 400
    db.session.expire_all()
    assert one.state == "acknowledged"


def test_viewer_sees_incidents_but_no_buttons_and_cannot_change_them(client, login_as, customer):
    login_as("viewer", customers=[customer])
    incident = fire(customer)
    assert str(incident.id) in client.get("/incidents").text
    page = client.get(f"/incidents/{incident.id}")
    assert page.status_code == 200 and ">Acknowledge</button>" not in page.text and "Resolve</button>" not in page.text
    assert client.post(f"/incidents/{incident.id}/ack").status_code == 403
    assert client.post("/incidents/bulk", data={"action": "acknowledge", "incident": [incident.id]}).status_code == 403
    db.session.expire_all()
    assert incident.state == "triggered"


def test_operator_of_another_customer_cannot_see_or_change_the_incident(
    client, login_as, customer, make_customer, make_user
):
    other = make_customer("Other Customer")
    mine = fire(other, title="MyOwnAlert")
    theirs = fire(customer, title="TheirSecretAlert")
    internal = fire(None, title="InternalAlert")
    login_as("operator", customers=[other])
    listing = client.get("/incidents?state=all").text
    assert "TheirSecretAlert" not in listing and "InternalAlert" not in listing and "MyOwnAlert" in listing
    for incident in (theirs, internal):
        assert client.get(f"/incidents/{incident.id}").status_code == 404
        assert client.post(f"/incidents/{incident.id}/ack").status_code == 404
        assert client.post(f"/incidents/{incident.id}/resolve").status_code == 404
        assert client.post(f"/incidents/{incident.id}/reopen").status_code == 404
        answer = client.post("/incidents/bulk", data={"action": "resolve", "incident": [mine.id, incident.id]})
        assert answer.status_code == 404
    db.session.expire_all()
    assert (mine.state, theirs.state, internal.state) == ("triggered", "triggered", "triggered")
    # the customer filter cannot reach it either
    assert "TheirSecretAlert" not in client.get(f"/incidents?state=all&customer={customer.id}").text


# --- one incident ------------------------------------------------------------------------------------------


def test_incident_page_shows_labels_links_timeline_paged_and_why_not(client, login_as, customer, make_user):
    make_user("operator", name="Paula Paged", phone="+14155550101", customers=[customer])
    quiet = make_user("viewer", name="Vera Viewer", customers=[customer])
    login_as("admin", name="Ada Admin", customers=[])
    incident = fire(
        customer,
        data={
            "generatorURL": "https://prometheus.example.com/graph?g0.expr=up",
            "job_url": "javascript:alert(1)",
            "annotations": {"summary": "Disk 95% full", "runbook_url": "https://runbooks.example.com/disk"},
        },
    )
    page = client.get(f"/incidents/{incident.id}")
    assert page.status_code == 200
    text = page.text
    assert "instance=db-1" in text and "service=storage" in text
    assert "Disk 95% full" in text
    assert 'href="https://prometheus.example.com/graph?g0.expr=up"' in text
    assert 'href="https://runbooks.example.com/disk"' in text
    assert 'href="javascript:' not in text  # only http(s) links are links
    paged = text.split('class="paged mb-2">')[1].split("</p>")[0]
    assert "Paula Paged" in paged and "Vera Viewer" not in paged
    timeline = text.split('id="incident-timeline"')[1].split("</section>")[0]
    assert "triggered" in timeline and "Paula Paged" in timeline
    assert "…0101" in timeline and "+14155550101" not in timeline  # the recipient masked

    why = client.get(f"/incidents/{incident.id}", query_string={"explain": quiet.id})
    answer = why.text.split('id="explain-answer"')[1].split("</div>")[0]
    assert "Vera Viewer" in answer
    assert "sms" in answer and "email" in answer and "web" in answer
    assert "viewer" in answer or "not" in answer  # the rule that left her out, in words
    # a person who is not a choice: a field error, no 500
    bad = client.get(f"/incidents/{incident.id}", query_string={"explain": "999999"})
    assert bad.status_code == 200 and "Not a valid choice" in bad.text

    client.post(f"/incidents/{incident.id}/ack", data={"via": "web"})
    after = client.get(f"/incidents/{incident.id}").text
    assert "Acknowledged by Ada Admin (web)" in after
    client.post(f"/incidents/{incident.id}/resolve")
    client.post(f"/incidents/{incident.id}/reopen")
    db.session.expire_all()
    assert incident.state == "triggered"
    kinds = [k for k in re.findall(r"kind-(\w+)", client.get(f"/incidents/{incident.id}").text)]
    assert kinds == ["triggered", "acknowledged", "resolved", "reopened"]


def test_acknowledging_on_the_incident_page_stops_escalation(client, login_as, customer, escalating, make_user):
    make_user(Role.ADMIN, name="Customer Admin", phone="+14155550102", customers=[customer])
    login_as("operator", customers=[customer])
    start = utcnow() - timedelta(minutes=5)
    acked = fire(customer, title="Acked", now=start)
    ignored = fire(customer, title="Ignored", now=start)  # the control: nobody acknowledges it
    answer = client.post(f"/incidents/{acked.id}/ack", data={"via": "web"})
    assert answer.status_code == 302 and answer.headers["Location"] == f"/incidents/{acked.id}"
    result = escalation.escalate(now=start + timedelta(hours=1))
    db.session.commit()
    assert result.escalated == [f"incident {ignored.id} level 1"]
    assert {e.incident_id for e in escalation_steps()} == {ignored.id}


def test_acknowledging_from_the_dashboard_stops_escalation(client, login_as, customer, escalating, make_user):
    make_user(Role.ADMIN, name="Customer Admin", phone="+14155550102", customers=[customer])
    login_as("operator", customers=[customer])
    start = utcnow() - timedelta(minutes=5)
    acked = fire(customer, title="AckedFromDashboard", now=start)
    ignored = fire(customer, title="IgnoredOnDashboard", severity=Severity.CRITICAL, now=start)
    dashboard = client.get("/")
    section = dashboard.text.split('id="open-incidents"')[1].split("</section>")[0]
    assert "AckedFromDashboard" in section and "IgnoredOnDashboard" in section
    assert section.count(">Acknowledge</button>") == 2
    assert re.search(r'href="/incidents\?[^"]*state=triggered[^"]*"', dashboard.text)  # counts link to the console
    answer = client.post(f"/incidents/{acked.id}/ack", data={"via": "dashboard", "next": "/"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    db.session.expire_all()
    assert acked.acknowledged_via == "dashboard"
    result = escalation.escalate(now=start + timedelta(hours=1))
    db.session.commit()
    assert result.escalated == [f"incident {ignored.id} level 1"]
    section = client.get("/").text.split('id="open-incidents"')[1].split("</section>")[0]
    assert section.count(">Acknowledge</button>") == 1


def test_dashboard_counts_open_incidents(client, login_as, customer):
    login_as("viewer", customers=[customer])
    fire(customer, title="One")
    fire(customer, title="Two", severity=Severity.HIGH)
    gone = fire(customer, title="Three")
    gone.state = IncidentState.RESOLVED
    gone.open_key = None
    db.session.commit()
    text = client.get("/").text
    tiles = text.split('class="tiles"')[1].split("</section>")[0]
    assert re.search(r'<span class="num">2</span><span>triggered', tiles)
    assert re.search(r'<span class="num">1</span><span>critical open', tiles)
    section = text.split('id="open-incidents"')[1].split("</section>")[0]
    assert "One" in section and "Two" in section and "Three" not in section
    assert ">Acknowledge</button>" not in section  # a viewer has no button


def test_inbox_has_one_item_per_incident_and_acknowledging_there_stops_escalation(
    client, login_as, customer, escalating, make_user, drain
):
    make_user(Role.ADMIN, name="Customer Admin", phone="+14155550102", customers=[customer])
    me = login_as("operator", customers=[customer])
    start = utcnow() - timedelta(minutes=5)
    acked = fire(customer, title="AckMeFromInbox", now=start)
    ignored = fire(customer, title="LeaveMe", now=start)
    second = NormalisedEvent(
        source="alertmanager",
        dedup_key="again",
        status=EventStatus.FIRING,
        severity=Severity.CRITICAL,
        title="AckMeFromInbox",
        customer_id=customer.id,
        incident_key=acked.key,
    )
    ingest.ingest([second], now=start + timedelta(minutes=1))  # a resend: no new page, one item still
    db.session.commit()
    drain()
    inbox = client.get("/inbox").text
    assert inbox.count(f'href="/incidents/{acked.id}"') == 1  # one item for the incident
    assert inbox.count("inbox-incident") == 2  # and one for the other
    # a colleague takes a third one: its page and the notice of who took it are one item, one unread in the menu
    colleague = make_user("operator", name="Colin Colleague", customers=[customer])
    taken = fire(customer, title="TakenByColin", now=start)
    acks.acknowledge(taken, by=colleague, via="web")
    db.session.commit()
    drain()
    about_taken = db.session.scalars(
        db.select(Notification)
        .join(Event, Event.id == Notification.event_id)
        .where(Notification.user_id == me.id, Notification.channel == "web", Event.incident_id == taken.id)
        .order_by(Notification.id)
    ).all()
    assert len(about_taken) == 2  # the page, then "Colin Colleague acknowledged"
    inbox = client.get("/inbox").text
    item = inbox.split(f'href="/incidents/{taken.id}"')[1].split("</tr>")[0]
    assert "acknowledged" in item and "Colin Colleague" in item  # its newest news
    assert inbox.count(f'href="/incidents/{taken.id}"') == 1
    assert 'title="unread">3<' in inbox  # three incidents, four notifications
    client.post(f"/inbox/{about_taken[-1].id}/read")
    db.session.expire_all()
    assert all(n.read_at is not None for n in about_taken)  # the item is read, all of it
    assert 'title="unread">2<' in client.get("/inbox").text
    answer = client.post(f"/incidents/{acked.id}/ack", data={"via": "inbox", "next": "/inbox"})
    assert answer.headers["Location"] == "/inbox"
    db.session.expire_all()
    assert acked.state == "acknowledged" and acked.acknowledged_via == "inbox"
    item = client.get("/inbox").text.split("AckMeFromInbox")[1].split("</tr>")[0]
    assert "acknowledged" in item and ">Acknowledge</button>" not in item
    result = escalation.escalate(now=start + timedelta(hours=1))
    db.session.commit()
    assert result.escalated == [f"incident {ignored.id} level 1"]
