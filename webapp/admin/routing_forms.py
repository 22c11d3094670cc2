"""Forms of the routing preview (a webhook body or a recent event) and of incoming webhook sources."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from webapp.admin.ops_forms import allowed_ips_field
from webapp.models import WEBHOOK_SOURCE_KINDS

MAX_PAYLOAD_CHARS = 200_000


class RoutingPreviewForm(FlaskForm):
    source = SelectField("Source", choices=[], validators=[Optional()])
    payload = TextAreaField(
        "Webhook body (JSON)",
        validators=[Optional(), Length(max=MAX_PAYLOAD_CHARS, message="At most %(max)d characters.")],
        render_kw={"rows": 14, "spellcheck": "false"},
    )
    event = SelectField("…or a recent event", choices=[], validators=[Optional()])
    customer = SelectField("Customer", choices=[], validators=[Optional()])


class WebhookSourceForm(FlaskForm):
    """A new incoming webhook source; its secret is pasted (the sender's) or, left empty, made here."""

    name = StringField(
        "Name", validators=[DataRequired(), Length(max=120)], description="Also ?source=<name> on the URL."
    )
    kind = SelectField("Kind", choices=WEBHOOK_SOURCE_KINDS.choices(), default="generic")
    customer = SelectField("Customer", choices=[], validators=[Optional()])
    create_tickets = BooleanField("Open a ticket for each new incident")
    secret = PasswordField(
        "Signing secret",
        validators=[Optional(), Length(max=500)],
        description="Paste the sender's secret, or leave empty and one is made and shown to you once.",
    )
    allowed_ips = allowed_ips_field()
