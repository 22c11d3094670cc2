"""Admin page forms (Flask-WTF: CSRF on every one). Fields normalise what people type."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
    ValidationError,
    widgets,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from webapp.models import EVENT_KINDS, EVENT_TYPES, PERSONAL_CHANNELS, Role, Severity
from webapp.services.people.preferences import CHANNELS
from webapp.services.people.users import UserError, check_password_strength
from webapp.validation import normalise_email


@cache
def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones()) if "/" in name or name == "UTC"]


def _valid_timezone(_form, field: Field) -> None:
    if field.data not in {name for name, _ in timezone_choices()}:
        raise ValidationError("Pick a time zone from the list, e.g. Europe/Paris.")


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class NormalisedEmailField(EmailField):
    def pre_validate(self, form) -> None:
        if self.data:
            try:
                self.data = normalise_email(self.data)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class CustomerForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    timezone = SelectField("Time zone", default="UTC", validators=[_valid_timezone], validate_choice=False)
    is_active = BooleanField("Active", default=True)

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


SEVERITY_CHOICES = [(s.value, s.value) for s in Severity]
EVENT_TYPE_CHOICES = EVENT_KINDS.choices()
CHANNEL_CHOICES = [(c.value, c.label) for c in PERSONAL_CHANNELS]


def _split_list(text: str | None) -> list[str]:
    return sorted({part.strip() for part in (text or "").replace("\n", ",").split(",") if part.strip()})


class PreferenceForm(FlaskForm):
    enabled_channels = MultiCheckboxField("Channels", choices=CHANNEL_CHOICES)
    min_severity_web = SelectField("Minimum severity in the inbox (web)", choices=SEVERITY_CHOICES)
    min_severity_email = SelectField("Minimum severity by email", choices=SEVERITY_CHOICES)
    min_severity_sms = SelectField("Minimum severity by SMS", choices=SEVERITY_CHOICES)
    event_types = MultiCheckboxField("Event types (none ticked: all)", choices=EVENT_TYPE_CHOICES)
    job_types = StringField("Job types (comma-separated; empty: all)", validators=[Length(max=500)])
    override_email = NormalisedEmailField("Send email to (instead of the login address)", validators=[Optional()])
    timezone = SelectField("Time zone", default="UTC", validators=[_valid_timezone], validate_choice=False)
    quiet_hours_start = TimeField("Quiet hours from", validators=[Optional()])
    quiet_hours_end = TimeField("Quiet hours until", validators=[Optional()])
    critical_bypasses_quiet_hours = BooleanField("Critical alerts ring through quiet hours")
    max_notifications_per_hour = IntegerField(
        "At most this many per hour (empty: no cap)", validators=[Optional(), NumberRange(min=1, max=10_000)]
    )
    enable_aggregation = BooleanField("Group bursts into one digest")
    aggregation_window_seconds = IntegerField(
        "Digest window (seconds)", default=120, validators=[InputRequired(), NumberRange(min=10, max=86_400)]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()

    # Optional() stops the checks of an empty field, so each end checks for the other.
    def validate_quiet_hours_start(self, field: Field) -> None:
        if field.data and not self.quiet_hours_end.data:
            raise ValidationError("Give both ends of the quiet hours, or neither.")

    def validate_quiet_hours_end(self, field: Field) -> None:
        if field.data and not self.quiet_hours_start.data:
            raise ValidationError("Give both ends of the quiet hours, or neither.")
        if field.data and field.data == self.quiet_hours_start.data:
            raise ValidationError("Quiet hours must not start and end at the same time.")

    def values(self) -> dict:
        return {
            "enabled_channels": [c for c in CHANNELS if c in (self.enabled_channels.data or [])],
            "min_severity_web": Severity(self.min_severity_web.data),
            "min_severity_email": Severity(self.min_severity_email.data),
            "min_severity_sms": Severity(self.min_severity_sms.data),
            "event_types": [t for t in EVENT_TYPES if t in (self.event_types.data or [])],
            "job_types": _split_list(self.job_types.data),
            "override_email": self.override_email.data or None,
            "timezone": self.timezone.data,
            "quiet_hours_start": self.quiet_hours_start.data,
            "quiet_hours_end": self.quiet_hours_end.data,
            "critical_bypasses_quiet_hours": self.critical_bypasses_quiet_hours.data,
            "max_notifications_per_hour": self.max_notifications_per_hour.data,
            "enable_aggregation": self.enable_aggregation.data,
            "aggregation_window_seconds": self.aggregation_window_seconds.data,
        }


UNCHANGED = [("", "— leave as is —")]
ON_OFF = [*UNCHANGED, ("on", "turn on"), ("off", "turn off")]


class BulkPreferenceForm(FlaskForm):
    users = MultiCheckboxField("Users", coerce=int, choices=[], validators=[DataRequired("Tick at least one user.")])
    channel_web = SelectField("Inbox (web)", choices=ON_OFF, default="")
    channel_email = SelectField("Email", choices=ON_OFF, default="")
    channel_sms = SelectField("SMS", choices=ON_OFF, default="")
    min_severity_email = SelectField("Minimum severity by email", choices=UNCHANGED + SEVERITY_CHOICES, default="")
    min_severity_sms = SelectField("Minimum severity by SMS", choices=UNCHANGED + SEVERITY_CHOICES, default="")
    max_notifications_per_hour = IntegerField(
        "Hourly cap (empty: leave as is)", validators=[Optional(), NumberRange(min=1, max=10_000)]
    )
    aggregation = SelectField("Digest", choices=ON_OFF, default="")

    def changes(self) -> tuple[set[str], set[str], dict]:
        on = {c for c in CHANNELS if getattr(self, f"channel_{c}").data == "on"}
        off = {c for c in CHANNELS if getattr(self, f"channel_{c}").data == "off"}
        values: dict = {}
        for name in ("min_severity_email", "min_severity_sms"):
            if getattr(self, name).data:
                values[name] = Severity(getattr(self, name).data)
        if self.max_notifications_per_hour.data:
            values["max_notifications_per_hour"] = self.max_notifications_per_hour.data
        if self.aggregation.data:
            values["enable_aggregation"] = self.aggregation.data == "on"
        return on, off, values

    def validate_aggregation(self, field: Field) -> None:
        on, off, values = self.changes()
        if not (on or off or values):
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
