"""On-call schedule pages (create, layers, timeline, "on call now", overrides with conflict warnings, roles and
tenants), the iCal feed (parsed back, field by field) and the hand-off notice (sent once)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from webapp.extensions import db
from webapp.models import (
    AuditLog,
    Channel,
    Event,
    Notification,
    Role,
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    utcnow,
)
from webapp.services.demo import seed
from webapp.services.monitoring import handoffs
from webapp.services.oncall import feeds, on_call_user_ids


def _last_monday_but_one() -> date:
    """The Monday a week before the turn under way began: a weekly rotation started then is in its second turn
    now (its hand-off is Monday 09:00 in Paris)."""
    ref = (utcnow().astimezone(ZoneInfo("Europe/Paris")) - timedelta(hours=9)).date()
    return ref - timedelta(days=ref.weekday() + 7)


def _weekly(customer, members, *, name="Primary", zone="Europe/Paris", starts_on=None) -> Schedule:
    schedule = Schedule(customer_id=customer.id if customer else None, name=name, time_zone=zone)
    schedule.layers.append(
        ScheduleLayer(
            position=0,
            name="weekly",
            rotation=Rotation.WEEKLY,
            rotation_hours=168,
            handoff_time=time(9, 0),
            starts_on=starts_on or _last_monday_but_one(),
            member_ids=[m.id for m in members],
            restrictions=[],
        )
    )
    db.session.add(schedule)
    db.session.commit()
    return schedule


def test_an_operator_builds_a_weekly_rotation_and_sees_it_on_the_timeline(client, login_as, make_user, customer):
    operator = login_as(Role.OPERATOR, name="Olga Operator")
    alice, bob = make_user(name="Alice Archer"), make_user(name="Bob Baker")
    created = client.post(
        "/schedules", data={"customer": customer.id, "name": "Database team", "time_zone": "Europe/Paris"}
    )
    assert created.status_code == 302
    schedule = db.session.scalar(db.select(Schedule).where(Schedule.name == "Database team"))
    assert created.headers["Location"].endswith(f"/schedules/{schedule.id}")
    monday = _last_monday_but_one()
    added = client.post(
        f"/schedules/{schedule.id}/layers",
        data={
            "name": "Primary",
            "rotation": "weekly",
            "handoff_time": "09:00",
            "starts_on": monday.isoformat(),
            "members": f"{operator.email}, {alice.email.upper()}, {bob.email}",
            "restrictions": "",
            "position": "0",
        },
    )
    assert added.status_code == 302, added.text
    page = client.get(f"/schedules/{schedule.id}?start={monday + timedelta(days=7)}")
    assert page.status_code == 200
    # week 0 was the operator's, so this week (the second turn) is Alice's
    now_card = page.text.split('id="on-call-now"')[1].split("</section>")[0]
    assert "Alice Archer" in now_card
    assert "Bob Baker" in page.text.split('id="on-call-next"')[1].split("</section>")[0]
    assert page.text.count('class="shift"') >= 3  # final row, the layer's row
    assert re.search(
        r"<title>Alice Archer: Mon \d\d \w{3} 09:00 – \w{3} \d\d \w{3} \d\d:\d\d \(Primary\)</title>", page.text
    )
    month = client.get(f"/schedules/{schedule.id}?view=month&start={monday.isoformat()}")
    assert month.status_code == 200 and "Bob Baker" in month.text
    listed = client.get("/schedules")
    assert "Database team" in listed.text and "Alice Archer" in listed.text.split(f'id="schedule-{schedule.id}"')[1]
    assert db.session.scalar(db.select(AuditLog.id).where(AuditLog.action == "schedule.layer.create")) is not None


def test_bad_layer_input_gets_messages_and_changes_nothing(client, login_as, make_user, customer, make_customer):
    login_as(Role.OPERATOR)
    stranger = make_user(name="Other tenant", customers=[make_customer("Other Co")])
    schedule = _weekly(customer, [])
    before = db.session.scalar(db.select(db.func.count(ScheduleLayer.id)))
    answer = client.post(
        f"/schedules/{schedule.id}/layers",
        data={
            "name": "",
            "rotation": "weekly",
            "handoff_time": "25:00",
            "starts_on": "someday",
            "members": stranger.email,
            "restrictions": "Weekdays 9-5",
            "position": "0",
        },
    )
    assert answer.status_code == 422
    for message in (
        "This field is required.",
        "Use HH:MM",
        "Use a date as YYYY-MM-DD",
        "write each window like Mon-Fri 09:00-18:00",
    ):
        assert message in answer.text
    answer = client.post(
        f"/schedules/{schedule.id}/layers",
        data={
            "name": "x",
            "rotation": "weekly",
            "handoff_time": "09:00",
            "starts_on": "2026-01-05",
            "members": stranger.email,
        },
    )
    assert answer.status_code == 422
    assert "Not one of this schedule&#39;s people" in answer.text  # the other tenant's person cannot be added
    assert db.session.scalar(db.select(db.func.count(ScheduleLayer.id))) == before
    assert client.get(f"/schedules/{schedule.id}?start=not-a-date").status_code == 400


def test_restrictions_round_trip_through_the_layer_page(client, login_as, customer):
    operator = login_as(Role.OPERATOR)
    schedule = _weekly(customer, [operator])
    layer = schedule.layers[0]
    saved = client.post(
        f"/schedules/layers/{layer.id}",
        data={
            "name": "office hours",
            "rotation": "daily",
            "handoff_time": "09:00",
            "starts_on": "2026-01-05",
            "members": operator.email,
            "restrictions": "Mon-Fri 09:00-18:00; Sat 22:00-06:00",
            "position": "2",
        },
    )
    assert saved.status_code == 302
    db.session.refresh(layer)
    assert layer.restrictions == [
        {"days": [0, 1, 2, 3, 4], "from": "09:00", "to": "18:00"},
        {"days": [5], "from": "22:00", "to": "06:00"},
    ]
    assert layer.rotation_hours == 24
    page = client.get(f"/schedules/layers/{layer.id}")
    assert "Mon-Fri 09:00-18:00; Sat 22:00-06:00" in page.text


def test_an_override_that_conflicts_is_shown_its_warnings_first(client, login_as, make_user, customer, make_customer):
    operator = login_as(Role.OPERATOR, customers=[customer, make_customer("Second Co")])
    alice, carol = make_user(name="Alice Archer"), make_user(name="Carol Cover")
    outsider = make_user(name="Olaf Outsider", customers=list(operator.customers[1:]))
    schedule = _weekly(customer, [operator, alice])
    tomorrow = (utcnow() + timedelta(days=1)).astimezone().date()
    form = {
        "user": carol.id,
        "starts_at": f"{tomorrow}T20:00",
        "ends_at": f"{tomorrow + timedelta(days=1)}T08:00",
        "note": "Carol covers",
    }
    assert client.post(f"/schedules/{schedule.id}/overrides", data=form).status_code == 302
    # the same hours again, by someone of the operator's other customer: two warnings, nothing stored yet
    again = {**form, "user": outsider.id}
    warned = client.post(f"/schedules/{schedule.id}/overrides", data=again)
    assert warned.status_code == 409
    warnings = warned.text.split("override-warnings")[1].split("</div>")[0]
    assert "overlaps the override of Carol Cover" in warnings
    assert "Olaf Outsider is not one of Acme Corp" in warnings
    assert db.session.scalar(db.select(db.func.count(ScheduleOverride.id))) == 1
    confirmed = client.post(f"/schedules/{schedule.id}/overrides", data={**again, "force": "y"})
    assert confirmed.status_code == 302
    assert db.session.scalar(db.select(db.func.count(ScheduleOverride.id))) == 2
    bad = client.post(f"/schedules/{schedule.id}/overrides", data={**form, "ends_at": form["starts_at"]})
    assert bad.status_code == 422 and "The end must be after the start." in bad.text


def test_an_override_for_the_person_on_call_anyway_or_in_the_past_is_warned(client, login_as, customer):
    operator = login_as(Role.OPERATOR)
    schedule = _weekly(customer, [operator])  # the only member: always on call
    tomorrow = utcnow().date() + timedelta(days=1)
    form = {"user": operator.id, "starts_at": f"{tomorrow}T10:00", "ends_at": f"{tomorrow}T12:00"}
    warned = client.post(f"/schedules/{schedule.id}/overrides", data=form)
    assert warned.status_code == 409 and "is on call during all these hours anyway" in warned.text
    past = {**form, "starts_at": "2020-01-01T10:00", "ends_at": "2020-01-01T12:00"}
    assert "These hours are already over." in client.post(f"/schedules/{schedule.id}/overrides", data=past).text
    assert db.session.scalar(db.select(db.func.count(ScheduleOverride.id))) == 0


def test_tenants_and_roles(client, login_as, make_user, customer, make_customer):
    other = make_customer("Other Co")
    theirs = _weekly(other, [make_user(name="Their Person", customers=[other])], name="Their rota")
    ops_team = _weekly(None, [], name="Operations rota")
    mine = _weekly(customer, [], name="Our rota")
    viewer = login_as(Role.VIEWER)
    listed = client.get("/schedules")
    assert "Our rota" in listed.text and "Their rota" not in listed.text and "Operations rota" not in listed.text
    assert "New schedule" not in listed.text
    assert client.get(f"/schedules/{theirs.id}").status_code == 404
    assert client.get(f"/schedules/{ops_team.id}").status_code == 404
    page = client.get(f"/schedules/{mine.id}")
    assert page.status_code == 200 and "Add override" not in page.text
    assert (
        client.post(f"/schedules/{mine.id}", data={"schedule-name": "Renamed", "schedule-time_zone": "UTC"}).status_code
        == 403
    )
    client.post("/logout")
    login_as(Role.OPERATOR)
    assert client.post(f"/schedules/{theirs.id}/delete").status_code == 404
    assert client.post("/schedules", data={"customer": "", "name": "Global", "time_zone": "UTC"}).status_code == 404
    assert client.post("/schedules", data={"customer": other.id, "name": "X", "time_zone": "UTC"}).status_code == 422
    assert db.session.get(Schedule, theirs.id) is not None and viewer.id


def _unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_the_ical_feed_is_valid_and_its_token_is_a_secret(client, login_as, make_user, customer):
    me = login_as(Role.OPERATOR, name="Alice; Archer, on call")
    bob = make_user(name="Bob")
    schedule = _weekly(customer, [me, bob], name="DB team, primary; EU")
    assert "Make my feed address" in client.get("/schedules/feed").text
    made = client.post("/schedules/feed")
    url = re.search(r"<code>(http[^<]+)</code>", made.text)[1]
    path = url.split("127.0.0.1:5000")[1]
    token = path.split("/")[-1].removesuffix(".ics")
    assert (
        db.session.scalar(
            db.select(db.func.count()).select_from(feeds.ScheduleFeed).where(feeds.ScheduleFeed.token_hash == token)
        )
        == 0
    )
    client.post("/logout")
    answer = client.get(path)  # no session: the token is the credential
    assert answer.status_code == 200 and answer.mimetype == "text/calendar"
    raw = answer.get_data(as_text=True)
    assert raw.endswith("\r\n") and "\n" not in raw.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in raw.split("\r\n"))
    lines = _unfold(raw)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and "VERSION:2.0" in lines
    events = [chunk for chunk in "\r\n".join(lines).split("BEGIN:VEVENT")[1:]]
    assert len(events) >= 4  # every other week of the next eight, and the current or last one
    for chunk in events:
        fields = dict(line.split(":", 1) for line in chunk.split("\r\n") if ":" in line)
        assert fields["UID"].startswith(f"shift-{schedule.id}-{me.id}-") and fields["UID"].endswith("@opsrelay")
        for name in ("DTSTAMP", "DTSTART", "DTEND"):
            assert re.fullmatch(r"\d{8}T\d{6}Z", fields[name])
        start = datetime.strptime(fields["DTSTART"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert start.astimezone(ZoneInfo("Europe/Paris")).strftime("%a %H:%M") == "Mon 09:00" or start < utcnow()
        assert fields["SUMMARY"] == "On call: DB team\\, primary\\; EU"
    assert "X-WR-CALNAME:On call: Alice\\; Archer\\, on call" in lines
    assert client.get(path.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))).status_code == 404
    login_as(Role.VIEWER)
    client.post("/schedules/feed")  # a different person's feed: Alice's address still works
    assert client.get(path).status_code == 200


def test_regenerating_ends_the_old_address(client, login_as, customer):
    login_as(Role.OPERATOR)
    first = re.search(r"<code>http://[^/]+([^<]+)</code>", client.post("/schedules/feed").text)[1]
    second = re.search(r"<code>http://[^/]+([^<]+)</code>", client.post("/schedules/feed").text)[1]
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200
    assert "It is not shown again" in client.get("/schedules/feed").text


def test_the_incoming_person_is_told_once_per_hand_off(app, make_user, customer):
    alice, bob = make_user(name="Alice"), make_user(name="Bob")
    monday = date(2026, 1, 5)
    schedule = _weekly(customer, [alice, bob], starts_on=monday)
    handoff = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris: Bob takes over
    schedule.next_notice_at = handoff
    db.session.commit()
    assert handoffs.sweep(now=handoff - timedelta(minutes=1)) == []
    told = handoffs.sweep(now=handoff + timedelta(seconds=20))
    assert len(told) == 1
    assert handoffs.sweep(now=handoff + timedelta(seconds=40)) == []  # claimed: a second scheduler finds nothing
    db.session.commit()
    event = db.session.get(Event, told[0])
    assert (
        event.title == "You are on call for Primary" and "starts Mon 12 Jan 09:00 until Mon 19 Jan 09:00" in event.body
    )
    notes = list(db.session.scalars(db.select(Notification).where(Notification.event_id == event.id)))
    assert {n.user_id for n in notes} == {bob.id}
    assert {n.channel for n in notes} == {Channel.WEB, Channel.EMAIL}
    db.session.refresh(schedule)
    assert schedule.next_notice_at == datetime(2026, 1, 19, 8, 0, tzinfo=UTC)
    # the same instant claimed again by a late scheduler (an old value): the dedup key stores nothing twice
    assert handoffs._tell(schedule, handoff, now=handoff) is None


def test_renaming_a_schedule(client, login_as, customer):
    login_as(Role.OPERATOR)
    schedule = _weekly(customer, [])
    answer = client.post(
        f"/schedules/{schedule.id}", data={"schedule-name": "Renamed", "schedule-time_zone": "Asia/Tokyo"}
    )
    assert answer.status_code == 302
    db.session.refresh(schedule)
    assert (schedule.name, schedule.time_zone) == ("Renamed", "Asia/Tokyo")
    refused = client.post(
        f"/schedules/{schedule.id}", data={"schedule-name": "X", "schedule-time_zone": "Mars/Olympus"}
    )
    assert refused.status_code == 422 and "Unknown time zone" in refused.text


def test_changing_a_schedule_plans_its_next_notice(client, login_as, customer):
    operator = login_as(Role.OPERATOR)
    schedule = _weekly(customer, [])
    client.post(
        f"/schedules/{schedule.id}/layers",
        data={
            "name": "daily",
            "rotation": "daily",
            "handoff_time": "09:00",
            "starts_on": "2026-01-01",
            "members": operator.email,
        },
    )
    db.session.refresh(schedule)
    assert schedule.next_notice_at is not None and schedule.next_notice_at > utcnow()


def test_the_demo_has_a_schedule_with_someone_on_call(app, client):
    seed.seed()
    db.session.commit()
    schedule = db.session.scalar(db.select(Schedule).where(Schedule.name == "Initech primary on-call"))
    assert on_call_user_ids([schedule.id], utcnow())[schedule.id]
    assert utcnow() < schedule.next_notice_at <= utcnow() + timedelta(days=7)
    assert (
        db.session.scalar(
            db.select(db.func.count(ScheduleOverride.id)).where(ScheduleOverride.schedule_id == schedule.id)
        )
        == 1
    )
