"""The top menu: only links the user's role may open, and only to pages that exist.

Items are grouped (Incidents, Tickets, Deliveries, People, Configuration, Integrations), each group a dropdown of
the collapsing navbar. Another area adds its page in its module, e.g.
`MENU.append(MenuItem("admin.delivery_log", "Delivery log", Role.VIEWER, "Deliveries"))`; an item whose endpoint
is not registered is left out (no dead links), and so is a group left empty."""

from __future__ import annotations

from typing import NamedTuple

from flask import current_app, request
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from webapp.admin import bp
from webapp.admin.times import remember_viewer_zone
from webapp.extensions import db
from webapp.models import Role
from webapp.services.overview.inbox import unread_and_zone


class MenuItem(NamedTuple):
    endpoint: str
    label: str
    role: Role
    group: str | None = None  # None: a link of its own in the bar


class MenuGroup(NamedTuple):
    label: str
    items: list[MenuItem]
    active: bool


MENU: list[MenuItem] = [
    MenuItem("admin.incident_list", "Incidents", Role.VIEWER, "Incidents"),  # the console: first in the bar
    MenuItem("admin.dashboard", "Dashboard", Role.VIEWER),
    MenuItem("admin.ticket_list", "Tickets", Role.VIEWER, "Tickets"),
    MenuItem("admin.report_sla", "SLA report", Role.VIEWER, "Tickets"),
    MenuItem("admin.delivery_list", "Delivery log", Role.VIEWER, "Deliveries"),
    MenuItem("admin.test_send", "Test sends", Role.OPERATOR, "Deliveries"),
    MenuItem("admin.report_sms_spend", "SMS spend", Role.VIEWER, "Deliveries"),
    MenuItem("admin.customer_list", "Customers", Role.VIEWER, "People"),
    MenuItem("admin.user_list", "Users", Role.ADMIN, "People"),
    MenuItem("admin.template_list", "Templates", Role.VIEWER, "Configuration"),
    MenuItem("admin.sla_list", "SLA policies", Role.VIEWER, "Configuration"),
    MenuItem("admin.smtp_list", "SMTP", Role.VIEWER, "Configuration"),
    MenuItem("admin.audit_list", "Audit log", Role.ADMIN, "Configuration"),
    MenuItem("admin.integrations_page", "Integrations", Role.OPERATOR, "Integrations"),
]


def _active(endpoint: str) -> bool:
    here = request.endpoint or ""
    return here.split("_")[0] == endpoint.split("_")[0]


def menu_for(items: list[MenuItem]) -> list[MenuItem | MenuGroup]:
    """The bar, in MENU order: a link of its own where it stands, a group (GROUPS) where its first item stands.
    A group whose first item has the group's name shows that item as a link, its dropdown beside it."""
    bar: list[MenuItem | MenuGroup] = []
    for item in items:
        if item.group is None:
            bar.append(item)
        elif item.group not in {entry.label for entry in bar if isinstance(entry, MenuGroup)}:
            members = [other for other in items if other.group == item.group]
            bar.append(MenuGroup(item.group, members, any(_active(other.endpoint) for other in members)))
    return bar


@bp.app_context_processor
def menu_context() -> dict:
    if not current_user or not current_user.is_authenticated:
        return {"menu_items": [], "inbox_unread": 0}
    items = [item for item in MENU if item.endpoint in current_app.view_functions and current_user.has_role(item.role)]
    items = menu_for(items)
    try:
        unread, pref_zone = unread_and_zone(current_user.id)
        remember_viewer_zone(pref_zone)
    except SQLAlchemyError:  # the error page for a database outage must still render
        db.session.rollback()
        unread = 0
    return {"menu_items": items, "inbox_unread": unread}
