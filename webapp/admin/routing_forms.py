"""The routing preview form: a webhook body and its source, or a recent event, and optionally a customer."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.validators import Length, Optional

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
