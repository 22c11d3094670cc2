"""Forms of the operations pages: delivery log filters, tickets, SMTP, test sends, integrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import URL, DataRequired, InputRequired, Length, Optional, ValidationError

from webapp.admin.forms import MultiCheckboxField
from webapp.extensions import db
from webapp.models import (
    EVENT_KINDS,
    WEBHOOK_EVENTS,
    Channel,
    NotificationStatus,
    Priority,
    Role,
    TicketStatus,
    User,
)
from webapp.services.integrations.smtp_configs import SMTP_CONFIG
from webapp.validation import normalise_email, to_e164

if TYPE_CHECKING:
    from webapp.tenancy import Principal


def _choices(enum_cls, *, blank: str | None = None) -> list[tuple[str, str]]:
    head = [("", blank)] if blank is not None else []
    return head + [(m.value, getattr(m, "label", m.value)) for m in enum_cls]


class FilterForm(FlaskForm):
    """A GET form: no CSRF (it changes nothing), bad values say so next to the field."""

    class Meta:
        csrf = False


class DeliveryFilterForm(FilterForm):
    channel = SelectField("Channel", choices=_choices(Channel, blank="any channel"), validators=[Optional()])
    status = SelectField("Status", choices=_choices(NotificationStatus, blank="any status"), validators=[Optional()])
    customer = SelectField("Customer", choices=[], validators=[Optional()])
    event_type = SelectField(
        "Event type", choices=[("", "any event type"), *EVENT_KINDS.choices()], validators=[Optional()]
    )
    user = SelectField("User", choices=[], validators=[Optional()])
    since = DateField("From", validators=[Optional()])
    until = DateField("Until", validators=[Optional()])


class TicketFilterForm(FilterForm):
    q = StringField("Search", validators=[Optional(), Length(max=100)])
    status = SelectField("Status", choices=_choices(TicketStatus, blank="any status"), validators=[Optional()])
    priority = SelectField("Priority", choices=_choices(Priority, blank="any priority"), validators=[Optional()])
    customer = SelectField("Customer", choices=[], validators=[Optional()])
    assignee = SelectField("Assignee", choices=[], validators=[Optional()])
    sla = SelectField(
        "SLA",
        choices=[("", "any SLA state"), ("at_risk", "at risk"), ("breached", "breached")],
        validators=[Optional()],
    )


class TicketForm(FlaskForm):
    customer = SelectField("Customer", choices=[], validators=[InputRequired(message="Pick a customer.")])
    title = StringField("Title", validators=[DataRequired(message="Give the ticket a title."), Length(max=200)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=20000)])
    priority = SelectField("Priority", choices=_choices(Priority), default=Priority.NORMAL.value)
    assignee = SelectField("Assignee", choices=[], validators=[Optional()])


class TicketEditForm(FlaskForm):
    priority = SelectField("Priority", choices=_choices(Priority))
    assignee = SelectField("Assignee", choices=[], validators=[Optional()])
    status = SelectField("Status", choices=_choices(TicketStatus))


class CommentForm(FlaskForm):
    body = TextAreaField("Comment", validators=[DataRequired(message="Write something first."), Length(max=20000)])


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class SmtpConfigForm(SMTP_CONFIG.form("SmtpConfigFields")):
    """The SMTP settings page: the fields of SMTP_CONFIG (checked by the service), and whose settings."""

    customer = SelectField("Customer", choices=[], validators=[InputRequired(message="Pick a customer.")])
    inputs = {"customer_id": "customer"}


def _email(value: str) -> str:
    try:
        return normalise_email(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class TestEmailForm(FlaskForm):
    to = EmailField("Send to", validators=[DataRequired(message="Enter an address."), Length(max=254)])

    def validate_to(self, field) -> None:
        field.data = _email(field.data)


class TestSendForm(FlaskForm):
    customer = SelectField("Customer", choices=[], validators=[InputRequired(message="Pick a customer.")])
    channel = SelectField(
        "Channel", choices=[(c.value, c.label) for c in (Channel.SMS, Channel.EMAIL, Channel.VOICE)], default="sms"
    )
    to = StringField("To", validators=[DataRequired(message="Enter a phone number or an email address.")])
    message = TextAreaField("Message", validators=[Optional(), Length(max=1000)])

    def __init__(self, *args, region: str = "US", **kwargs):
        super().__init__(*args, **kwargs)
        self.region = region

    def validate_to(self, field) -> None:
        try:
            field.data = (
                to_e164(field.data, region=self.region)
                if self.channel.data in ("sms", "voice")
                else normalise_email(field.data)
            )
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class WebhookEndpointForm(FlaskForm):
    customer = SelectField("Customer", choices=[], validators=[Optional()])
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    url = URLField(
        "URL", validators=[DataRequired(), Length(max=2000), URL(require_tld=False, message="Enter an http(s) URL.")]
    )
    event_types = MultiCheckboxField(
        "Events sent",
        choices=[(e.name, f"{e.name}: {e.label}") for e in WEBHOOK_EVENTS],
        validators=[Optional()],
        description="None ticked: every event is sent.",
    )
    is_active = BooleanField("Active", default=True)

    def validate_url(self, field) -> None:
        if not field.data.lower().startswith(("http://", "https://")):
            raise ValidationError("Enter an http(s) URL.")


def allowed_ips_field() -> StringField:
    """The IP allow-list input of a webhook source or an API key; the service checks each network."""
    return StringField(
        "Allowed networks",
        validators=[Optional(), Length(max=4000)],
        description="CIDR, comma-separated (e.g. 203.0.113.0/24, 2001:db8::/32); empty: any address.",
    )


class ApiKeyForm(FlaskForm):
    customer = SelectField("Customer", choices=[], validators=[Optional()])
    name = StringField("Name", validators=[DataRequired(message="Name the key after who uses it."), Length(max=120)])
    scope = SelectField("Scope", choices=[("read", "read"), ("write", "write"), ("admin", "admin")], default="read")
    allowed_ips = allowed_ips_field()


class AllowedIpsForm(FlaskForm):
    """Change the IP allow-list of an existing webhook source or API key."""

    allowed_ips = allowed_ips_field()


# --- choices the pages fill in per reader (the customers and people it sees: webapp.tenancy) -------------------


def customer_choices(principal: Principal) -> list[tuple[str, str]]:
    """(id, name) of the customers `principal` sees, for a customer select."""
    return [(str(c.id), c.name) for c in principal.visible_customers()]


def user_choices(principal: Principal, *, staff_only: bool = False, limit: int = 500) -> list[tuple[str, str]]:
    """(id, name) of the users `principal` sees; `staff_only`: active operators and admins (ticket assignees)."""
    query = principal.scoped_users(db.select(User.id, User.name).order_by(User.name).limit(limit), User.id)
    if staff_only:
        query = query.where(User.role != Role.VIEWER, User.is_active.is_(True))
    return [(str(uid), name) for uid, name in db.session.execute(query)]
