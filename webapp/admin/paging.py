"""Keyset pagination for list pages: cost bounded by the page size, whatever the table's length.

`keyset_page(query, Model.id)` reads `?after=` / `?before=` from the request and returns a `Page`
that `templates/_macros.html`'s `pager(page)` renders. Newest first (descending key) by default."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import request, url_for
from sqlalchemy import Select

from webapp.extensions import db
from webapp.inputs import arg_id


@dataclass
class Page:
    items: list
    next_url: str | None = None
    prev_url: str | None = None
    label: str = ""
    extra: dict = field(default_factory=dict)


def page_url(**changes) -> str:
    """The current page's URL with some query arguments changed (None drops one)."""
    args = {**(request.view_args or {}), **request.args.to_dict()}
    args.update(changes)
    return url_for(request.endpoint, **{k: v for k, v in args.items() if v not in (None, "")})


def keyset_page(query: Select, column, *, per_page: int, descending: bool = True) -> Page:
    """One page of `query` ordered by the unique indexed `column`, plus one row to know if more follow."""
    after, before = arg_id("after"), arg_id("before")
    backwards = before is not None and after is None
    if backwards:
        query = query.where(column > before if descending else column < before)
        query = query.order_by(column.asc() if descending else column.desc())
    else:
        if after is not None:
            query = query.where(column < after if descending else column > after)
        query = query.order_by(column.desc() if descending else column.asc())
    rows = list(db.session.scalars(query.limit(per_page + 1)).unique())
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
    key = column.key

    def cursor(row) -> int:
        return getattr(row, key)

    next_url = prev_url = None
    if rows:
        if (more and not backwards) or backwards:
            next_url = page_url(after=cursor(rows[-1]), before=None)
        if (after is not None) or (backwards and more):
            prev_url = page_url(before=cursor(rows[0]), after=None)
    elif after is not None or before is not None:
        prev_url = page_url(after=None, before=None)
    return Page(items=rows, next_url=next_url, prev_url=prev_url)
