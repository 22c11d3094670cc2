"""Forms of the incident pages: the console's filters and the "Why not notified?" picker (GET forms, they
change nothing), and the buttons that act (CSRF: webapp.admin.ops_forms.ConfirmForm)."""

from __future__ import annotations

from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import Length, Optional

from webapp.admin.ops_forms import FilterForm
from webapp.models import Severity
from webapp.services.overview.incident_queries import ORDERS, STATES

STATE_LABELS = {
    "open": "open (triggered or acknowledged)",
    "triggered": "triggered",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
    "all": "any state",
}
ORDER_LABELS = {"newest": "newest first", "severity": "most severe first"}


class IncidentFilterForm(FilterForm):
    state = SelectField("State", choices=[(s, STATE_LABELS[s]) for s in STATES], default="open")
    severity = SelectField(
        "Severity", choices=[("", "any severity")] + [(s.value, s.value) for s in Severity], validators=[Optional()]
    )
    customer = SelectField("Customer", choices=[], validators=[Optional()])
    source = SelectField("Source", choices=[], validators=[Optional()])
    label = StringField("Service / instance", validators=[Optional(), Length(max=200)])
    mine = BooleanField("Paged me")
    unacked = BooleanField("Unacknowledged")
    order = SelectField("Order", choices=[(o, ORDER_LABELS[o]) for o in ORDERS], default="newest")


class ExplainForm(FilterForm):
    explain = SelectField("Why was this person not notified?", choices=[], validators=[Optional()])
