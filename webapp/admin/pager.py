"""The list pages' links for keyset pages (webapp.paging): `?before=` / `?after=` on the page's own URL.

`keyset_page(query, Model.id)` reads the bounds from the request and returns a `Page` that
`templates/_macros.html`'s `pager(page)` renders; `links(page)` does the same for a KeysetPage a service
built. Newest first (descending key) by default."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for
from sqlalchemy import Select

from webapp import paging
from webapp.inputs import arg_id


@dataclass
class Page:
    items: list
    next_url: str | None = None  # further down the list (older, for a newest-first list)
    prev_url: str | None = None  # further up


def page_url(**changes) -> str:
    """The current page's URL with some query arguments changed (None drops one)."""
    args = {**(request.view_args or {}), **request.args.to_dict()}
    args.update(changes)
    return url_for(request.endpoint, **{k: v for k, v in args.items() if v not in (None, "")})


def bounds() -> dict:
    """The page the request asks for: `before` / `after` from its query string."""
    return {"before": arg_id("before"), "after": arg_id("after")}


def keyset_page(query: Select, column, *, per_page: int, descending: bool = True) -> Page:
    """One page of `query` ordered by the unique indexed `column`, with the links to its neighbours."""
    return links(paging.keyset_page(query, column, per_page=per_page, descending=descending, **bounds()), descending)


def links(page: paging.KeysetPage, descending: bool = True) -> Page:
    below = page_url(before=page.before, after=None) if page.before is not None else None
    above = page_url(after=page.after, before=None) if page.after is not None else None
    next_url, prev_url = (below, above) if descending else (above, below)
    if not page.items and (request.args.get("before") or request.args.get("after")):
        prev_url = page_url(before=None, after=None)  # past the end: back to the start
    return Page(items=page.items, next_url=next_url, prev_url=prev_url)
