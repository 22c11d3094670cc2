"""The admin pages. One gate: every page here needs a signed-in user."""

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("admin", __name__)


@bp.before_request
@login_required
def require_login():
    return None


from webapp.admin import (  # noqa: E402,F401
    audit,
    customers,
    dashboard,
    deliveries,
    events,
    heartbeats,
    inbox,
    incidents,
    integrations,
    menu,
    phones,
    preferences,
    queue_page,
    routing_preview,
    schedules,
    sla,
    sms_spend,
    smtp,
    templates,
    test_sends,
    tickets,
    times,
    users,
    webhook_sources,
)
