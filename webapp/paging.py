"""Keyset pagination, for the pages and the API alike: a page of a query ordered by a unique key, at the cost
of one indexed range scan whatever the table's length (no OFFSET).

The key is one unique column (a row id) or a sort column and the row id as a tie-break. `before=k` asks for
the rows whose key is below k, `after=k` for those above it; a page answers with the keys to ask for the
pages on either side (`page.before`, `page.after`), None where there is none. Pages put them in ?before= /
?after= (webapp.admin.pager builds the links); the API wraps its one direction in an opaque cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, literal, tuple_

from webapp.extensions import db


@dataclass(frozen=True)
class KeysetPage:
    items: list
    before: Any = None  # pass as `before` for the rows with smaller keys (None: there are none)
    after: Any = None  # pass as `after` for the rows with greater keys (None: there are none)


def keyset_page(
    query: Select,
    *keys,
    per_page: int,
    before: Any = None,
    after: Any = None,
    descending: bool = True,
) -> KeysetPage:
    """One page of `query` ordered by `keys` (greatest first when `descending`), one statement.

    With `after` the page is the `per_page` rows just above it, else the rows just below `before` (or from
    the start). A key value is the column's value for one key, a tuple for two."""
    if after is not None:  # the rows just above `after`: walk up from it
        query, walk_up = query.where(_beyond(keys, after, above=True)), True
    elif before is not None:  # the rows just below `before`: walk down from it
        query, walk_up = query.where(_beyond(keys, before, above=False)), False
    else:  # the first page: from the top (descending) or the bottom
        walk_up = not descending
    query = query.order_by(*(key.asc() if walk_up else key.desc() for key in keys))
    rows = list(db.session.scalars(query.limit(per_page + 1)).unique())  # one extra row says "more"
    more, rows = len(rows) > per_page, rows[:per_page]
    if not rows:
        return KeysetPage([])
    low, high = (rows[0], rows[-1]) if walk_up else (rows[-1], rows[0])
    if walk_up == descending:  # walked against the display order: turn it round
        rows.reverse()
    if walk_up:  # came up from `after` (rows below it exist) or from the bottom
        has_below, has_above = after is not None, more
    else:  # came down from `before` (rows above it exist) or from the top
        has_below, has_above = more, before is not None
    return KeysetPage(
        rows,
        before=_key(low, keys) if has_below else None,
        after=_key(high, keys) if has_above else None,
    )


def _key(row, keys) -> Any:
    values = tuple(getattr(row, key.key) for key in keys)
    return values[0] if len(values) == 1 else values


def _beyond(keys, bound, *, above: bool):
    """The rows whose key is above (or below) `bound`: for (column, id), a row-value comparison
    `(column, id) < (:c, :i)`, which PostgreSQL and SQLite read as one range of the (column, id) index."""
    values = bound if isinstance(bound, tuple) else (bound,)
    if len(values) != len(keys):
        raise ValueError("a keyset bound has one value per key")
    if len(keys) == 1:
        return keys[0] > values[0] if above else keys[0] < values[0]
    row = tuple_(*keys)
    other = tuple_(*(literal(value, type_=key.type) for key, value in zip(keys, values, strict=True)))
    return row > other if above else row < other
