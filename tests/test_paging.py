"""webapp.paging: one keyset algorithm for every list — walking down and back up gives every row once, in order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from webapp.extensions import db
from webapp.models import Customer, Event, EventStatus, Severity, utcnow
from webapp.paging import keyset_page


def names(page) -> list[str]:
    return [row.name for row in page.items]


@pytest.fixture
def customers(app):
    rows = [Customer(name=f"C{n:02d}") for n in range(7)]
    db.session.add_all(rows)
    db.session.commit()
    return rows


@pytest.mark.parametrize("descending", [True, False])
def test_walking_the_pages_there_and_back_shows_every_row_once(customers, descending):
    query = db.select(Customer)
    expected = [c.name for c in sorted(customers, key=lambda c: c.id, reverse=descending)]
    down = "before" if descending else "after"  # further along the display order
    up = "after" if descending else "before"
    pages, page = [], keyset_page(query, Customer.id, per_page=3, descending=descending)
    while True:
        pages.append(names(page))
        following = getattr(page, down)
        if following is None:
            break
        page = keyset_page(query, Customer.id, per_page=3, descending=descending, **{down: following})
    assert pages == [expected[0:3], expected[3:6], expected[6:7]]
    assert getattr(keyset_page(query, Customer.id, per_page=3, descending=descending), up) is None  # the start
    back = []
    while getattr(page, up) is not None:
        page = keyset_page(query, Customer.id, per_page=3, descending=descending, **{up: getattr(page, up)})
        back.append(names(page))
    assert back == [expected[3:6], expected[0:3]]


def test_two_keys_break_ties_on_the_id(app):
    same = utcnow() - timedelta(minutes=5)
    for n in range(5):
        db.session.add(
            Event(
                source="generic",
                dedup_key=f"k{n}",
                status=EventStatus.INFO,
                severity=Severity.INFO,
                title=f"E{n}",
                created_at=same if n < 4 else utcnow(),
            )
        )
    db.session.commit()
    query = db.select(Event)
    first = keyset_page(query, Event.created_at, Event.id, per_page=2)
    assert [e.title for e in first.items] == ["E4", "E3"] and first.after is None
    second = keyset_page(query, Event.created_at, Event.id, per_page=2, before=first.before)
    assert [e.title for e in second.items] == ["E2", "E1"]
    last = keyset_page(query, Event.created_at, Event.id, per_page=2, before=second.before)
    assert [e.title for e in last.items] == ["E0"] and last.before is None


def test_an_empty_list_has_no_neighbours(app):
    page = keyset_page(db.select(Customer), Customer.id, per_page=5)
    assert (page.items, page.before, page.after) == ([], None, None)
