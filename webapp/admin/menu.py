"""The top menu: only links the user's role may open, and only to pages that exist.

Another area adds its page with `MENU.append(MenuItem("admin.delivery_log", "Delivery log", Role.VIEWER))`
in its module; an item whose endpoint is not registered is left out (no dead links)."""

from __future__ import annotations

from typing import NamedTuple

from flask import current_app
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Role
from webapp.services.overview.inbox import unread_count


class MenuItem(NamedTuple):
    endpoint: str
    label: str
    role: Role


MENU: list[MenuItem] = [
    MenuItem("admin.incident_list", "Incidents", Role.VIEWER),
    MenuItem("admin.dashboard", "Dashboard", Role.VIEWER),
    MenuItem("admin.ticket_list", "Tickets", Role.VIEWER),
    MenuItem("admin.delivery_list", "Delivery log", Role.VIEWER),
    MenuItem("admin.customer_list", "Customers", Role.VIEWER),
    MenuItem("admin.user_list", "Users", Role.ADMIN),
    MenuItem("admin.template_list", "Templates", Role.VIEWER),
    MenuItem("admin.sla_list", "SLA", Role.VIEWER),
    MenuItem("admin.report_sla", "Reports", Role.VIEWER),
    MenuItem("admin.smtp_list", "SMTP", Role.VIEWER),
    MenuItem("admin.test_send", "Test sends", Role.OPERATOR),
    MenuItem("admin.integrations_page", "Integrations", Role.VIEWER),
    MenuItem("admin.audit_list", "Audit log", Role.ADMIN),
]


@bp.app_context_processor
def menu_context() -> dict:
    if not current_user or not current_user.is_authenticated:
        return {"menu_items": [], "inbox_unread": 0}
    items = [item for item in MENU if item.endpoint in current_app.view_functions and current_user.has_role(item.role)]
    try:
        unread = unread_count(current_user.id)
    except SQLAlchemyError:  # the error page for a database outage must still render
        db.session.rollback()
        unread = 0
    return {"menu_items": items, "inbox_unread": unread}
