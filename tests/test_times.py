"""The one time helper of the pages (webapp/admin/times.py): the viewer's zone, named, across daylight-saving
changes, and the relative time beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from webapp.admin.times import absolute, relative, show_time, zone
from webapp.extensions import db
from webapp.models import NotificationPreference

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "name", "shown"),
    [
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "Europe/Paris", "2026-03-29 01:30 CET"),  # before the change
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "Europe/Paris", "2026-03-29 03:30 CEST"),  # 02:xx skipped
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "Europe/Paris", "2026-10-25 02:30 CEST"),  # 02:30 happens twice
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "Europe/Paris", "2026-10-25 02:30 CET"),  # ... named apart
        (datetime(2026, 3, 8, 10, 0, tzinfo=UTC), "America/New_York", "2026-03-08 06:00 EDT"),
        (datetime(2026, 3, 8, 6, 0, tzinfo=UTC), "America/New_York", "2026-03-08 01:00 EST"),
        (datetime(2026, 12, 1, 15, 0, tzinfo=UTC), "Asia/Singapore", "2026-12-01 23:00 +08"),
        (datetime(2026, 12, 1, 15, 0, tzinfo=UTC), "Asia/Kolkata", "2026-12-01 20:30 IST"),
        (datetime(2026, 12, 1, 15, 0, tzinfo=UTC), "UTC", "2026-12-01 15:00 UTC"),
    ],
)
def test_absolute_time_is_in_the_zone_with_the_zone_named(moment, name, shown):
    assert absolute(moment, ZoneInfo(name)) == shown


def test_an_unknown_zone_reads_as_utc():
    assert zone("Mars/Olympus") == ZoneInfo("UTC") and zone(None) == ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(seconds=20), "just now"),
        (timedelta(seconds=-30), "just now"),
        (timedelta(minutes=12), "in 12 min"),
        (timedelta(minutes=-3), "3 min ago"),
        (timedelta(hours=2, minutes=5), "in 2 h 5 min"),
        (timedelta(hours=-3), "3 h ago"),
        (timedelta(hours=20, minutes=40), "in 21 h"),
        (timedelta(days=-3, hours=-2), "3 days ago"),
    ],
)
def test_relative_time_in_words(offset, words):
    assert relative(NOW + offset, NOW) == words


def test_relative_time_counts_real_time_across_a_daylight_saving_change():
    # 00:30 UTC is 01:30 CET; one real hour later the Paris clock reads 03:30: still "in 1 h"
    assert relative(NOW + timedelta(hours=1), NOW) == "in 1 h"


def test_pages_show_times_in_the_viewers_own_zone(app, client, login_as, make_ticket, customer):
    user = login_as("operator")
    user.timezone = "Asia/Singapore"
    db.session.commit()
    ticket = make_ticket(customer=customer, title="Disk full", due_at=datetime(2030, 1, 1, 15, 0, tzinfo=UTC))
    page = client.get(f"/tickets/{ticket.id}").text
    assert "2030-01-01 23:00 +08" in page
    assert 'title="2030-01-01 15:00:00 UTC"' in page  # the UTC value on hover

    # A preference for all customers with its own zone wins over the account's (as quiet hours read it).
    db.session.add(NotificationPreference(user_id=user.id, customer_id=None, timezone="America/New_York"))
    db.session.commit()
    assert "2030-01-01 10:00 EST" in client.get(f"/tickets/{ticket.id}").text


def test_show_time_says_when_there_is_no_time_and_escapes_nothing_it_should_not(app):
    with app.test_request_context():
        assert "—" in show_time(None)
        html = show_time(NOW + timedelta(minutes=12), now=NOW)
        assert 'datetime="2026-03-29T00:42:00+00:00"' in html
        assert "2026-03-29 00:42 UTC" in html and "in 12 min" in html
