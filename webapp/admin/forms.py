"""Admin page forms (Flask-WTF: CSRF on every one). Fields normalise what people type."""

from __future__ import annotations

from dataclasses import replace

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from webapp.fields import Invalid, MultiCheckboxField, TimeZone, timezone_choices
from webapp.models import EVENT_KINDS, PERSONAL_CHANNELS, Role
from webapp.pricing import to_micros
from webapp.services.people.preferences import PREFERENCE
from webapp.services.people.users import UserError, check_password_strength
from webapp.validation import normalise_email


def _valid_timezone(_form, field: Field) -> None:
    try:
        TimeZone(name=field.name, label=str(field.label.text)).check(field.data)
    except Invalid as exc:
        raise ValidationError(str(exc)) from None


class NormalisedEmailField(EmailField):
    def pre_validate(self, form) -> None:
        if self.data:
            try:
                self.data = normalise_email(self.data)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class MoneyField(StringField):
    """An amount of money typed as text ("49.90"); `micros` is it in millionths, None when left empty."""

    micros: int | None = None

    def pre_validate(self, form) -> None:
        text = (self.data or "").strip()
        try:
            self.micros = to_micros(text) if text else None
        except ValueError as exc:
            raise ValidationError(f"{exc}, e.g. 50 or 49.90.") from None


class CustomerForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    timezone = SelectField("Time zone", default="UTC", validators=[_valid_timezone], validate_choice=False)
    is_active = BooleanField("Active", default=True)
    sms_budget = MoneyField("Monthly SMS budget", validators=[Length(max=20)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class MemberForm(FlaskForm):
    email = NormalisedEmailField("User's email", validators=[DataRequired(), Length(max=254)])


ROLE_CHOICES = [(r.value, r.value.capitalize()) for r in (Role.VIEWER, Role.OPERATOR, Role.ADMIN)]


def _check_new_password(access: str, password: str | None, missing: str) -> None:
    if access != "password":
        return
    if not password:
        raise ValidationError(missing)
    try:
        check_password_strength(password)
    except UserError as exc:
        raise ValidationError(str(exc)) from None


class UserEditForm(FlaskForm):
    email = NormalisedEmailField("Email", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.VIEWER.value)
    customers = MultiCheckboxField("Customers", coerce=int, choices=[])


class UserCreateForm(UserEditForm):
    access = RadioField(
        "Access",
        choices=[("invite", "Send an invitation link"), ("password", "Set a password now")],
        default="invite",
    )
    password = PasswordField("Password", validators=[Length(max=200)])

    def validate_password(self, field: Field) -> None:
        _check_new_password(self.access.data, field.data, "Enter a password, or choose an invitation link.")


class PasswordResetForm(FlaskForm):
    access = RadioField(
        "How",
        choices=[("invite", "Make a link for the user to set one"), ("password", "Set a password now")],
        default="invite",
    )
    password = PasswordField("New password", validators=[Length(max=200)])

    def validate_password(self, field: Field) -> None:
        _check_new_password(self.access.data, field.data, "Enter a password, or choose a link.")


class PhoneForm(FlaskForm):
    number = StringField("Number", validators=[InputRequired(), Length(max=40)])
    label = StringField("Label", default="Mobile", validators=[Length(max=40)])


class PhoneLabelForm(FlaskForm):
    label = StringField("Label", validators=[DataRequired(), Length(max=40)])


class PhoneCodeForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired(), Length(min=4, max=10)])


EVENT_TYPE_CHOICES = EVENT_KINDS.choices()
CHANNEL_CHOICES = [(c.value, c.label) for c in PERSONAL_CHANNELS]

# The page's form of a notification preference: its inputs are the fields of PREFERENCE, which the service
# validates (the API's JSON the same way).
PreferenceForm = PREFERENCE.form("PreferenceForm")

UNCHANGED = [("", "— leave as is —")]
ON_OFF = [*UNCHANGED, ("on", "turn on"), ("off", "turn off")]


def _leave_or(name: str, label: str) -> SelectField:
    return SelectField(label, choices=UNCHANGED + PREFERENCE[name].form_choices(), default="")


class BulkPreferenceForm(FlaskForm):
    """One change for many users: each input left empty leaves that setting as it is."""

    users = MultiCheckboxField("Users", coerce=int, choices=[], validators=[DataRequired("Tick at least one user.")])
    channel_web = SelectField("Inbox (web)", choices=ON_OFF, default="")
    channel_email = SelectField("Email", choices=ON_OFF, default="")
    channel_sms = SelectField("SMS", choices=ON_OFF, default="")
    channel_voice = SelectField("Phone call", choices=ON_OFF, default="")
    min_severity_email = _leave_or("min_severity_email", "Minimum severity by email")
    min_severity_sms = _leave_or("min_severity_sms", "Minimum severity by SMS")
    max_notifications_per_hour = replace(
        PREFERENCE["max_notifications_per_hour"], label="Hourly cap (empty: leave as is)"
    ).form_field()
    aggregation = SelectField("Digest", choices=ON_OFF, default="")

    def changes(self) -> tuple[set[str], set[str], dict]:
        """(channels to turn on, channels to turn off, the preference fields to set, as JSON values)."""
        channels = [str(c) for c in PERSONAL_CHANNELS]
        on = {c for c in channels if getattr(self, f"channel_{c}").data == "on"}
        off = {c for c in channels if getattr(self, f"channel_{c}").data == "off"}
        payload: dict = {}
        for name in ("min_severity_email", "min_severity_sms", "max_notifications_per_hour"):
            value = PREFERENCE[name].read_form(getattr(self, name).data)
            if value not in (None, ""):
                payload[name] = value
        if self.aggregation.data:
            payload["enable_aggregation"] = self.aggregation.data == "on"
        return on, off, payload

    def validate_aggregation(self, field: Field) -> None:
        on, off, payload = self.changes()
        if not (on or off or payload):
            raise ValidationError("Choose at least one change to apply.")


class TemplateForm(FlaskForm):
    subject = StringField("Subject", validators=[Optional(), Length(max=300)])
    body_text = TextAreaField(
        "Text (SMS and plain-text email)", validators=[DataRequired(), Length(max=20_000)], render_kw={"rows": 6}
    )
    body_html = TextAreaField("HTML (email)", validators=[Optional(), Length(max=100_000)], render_kw={"rows": 10})


class TemplateOverrideForm(FlaskForm):
    customer_id = SelectField("Customer", coerce=int, choices=[], validators=[DataRequired()])


class TemplateNewForm(FlaskForm):
    event_type = SelectField("Event type", choices=EVENT_TYPE_CHOICES)
    channel = SelectField("Channel", choices=CHANNEL_CHOICES, default="sms")
    customer_id = SelectField("For", coerce=int, choices=[], default=0)
