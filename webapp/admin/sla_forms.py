"""Forms of the SLA admin pages: a policy, the business hours, a holiday."""

from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEK = 7 * 24 * 60


class PolicyForm(FlaskForm):
    resolution_minutes = IntegerField(
        "Resolution target (minutes)", validators=[InputRequired(), NumberRange(min=1, max=52 * WEEK)]
    )
    first_response_minutes = IntegerField(
        "First-response target (minutes, optional)", validators=[Optional(), NumberRange(min=1, max=52 * WEEK)]
    )
    warning_minutes = IntegerField(
        "Warn this long before the deadline (minutes)", default=60, validators=[InputRequired(), NumberRange(0, WEEK)]
    )
    business_hours_only = BooleanField("Count business hours only (otherwise 24/7)")
    escalation_minutes = IntegerField(
        "Escalate an unacknowledged breach after (minutes, optional)", validators=[Optional(), NumberRange(1, WEEK)]
    )
    escalation_interval_minutes = IntegerField(
        "Then again every (minutes, optional)", validators=[Optional(), NumberRange(1, WEEK)]
    )
    escalation_limit = IntegerField(
        "Escalation levels at most", default=2, validators=[InputRequired(), NumberRange(0, 20)]
    )

    def validate_warning_minutes(self, field) -> None:
        if self.resolution_minutes.data and field.data is not None and field.data >= self.resolution_minutes.data:
            raise ValidationError("The warning must come before the deadline: use fewer minutes than the target.")


class MultiCheckbox(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _minutes(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= 1440 or int(minutes) > 59:
        raise ValueError
    return value


class CalendarForm(FlaskForm):
    timezone = StringField("Time zone (IANA, e.g. Europe/Berlin)", validators=[DataRequired(), Length(max=64)])
    working_days = MultiCheckbox(
        "Working days", choices=[SelectChoice(n, name) for n, name in enumerate(DAY_NAMES)], coerce=int
    )
    start = StringField("Day starts (HH:MM)", default="09:00", validators=[DataRequired(), Length(max=5)])
    end = StringField(
        "Day ends (HH:MM, 24:00 for midnight)", default="17:00", validators=[DataRequired(), Length(max=5)]
    )

    def validate_timezone(self, field) -> None:
        if field.data.strip() not in available_timezones():
            raise ValidationError("Unknown time zone: use an IANA name such as Europe/Berlin or America/New_York.")
        field.data = field.data.strip()
        ZoneInfo(field.data)

    def validate_working_days(self, field) -> None:
        if not field.data:
            raise ValidationError("Choose at least one working day.")

    def validate_start(self, field) -> None:
        try:
            self.start_minute = _minutes(field.data)
        except ValueError:
            raise ValidationError("Use HH:MM, e.g. 09:00.") from None

    def validate_end(self, field) -> None:
        try:
            self.end_minute = _minutes(field.data)
        except ValueError:
            raise ValidationError("Use HH:MM, e.g. 17:00.") from None
        if getattr(self, "start_minute", None) is not None and self.end_minute <= self.start_minute:
            raise ValidationError("The day must end after it starts.")


class HolidayForm(FlaskForm):
    day = DateField("Date", validators=[InputRequired()])
    name = StringField("Name", default="Holiday", validators=[DataRequired(), Length(max=120)])


class ConfirmForm(FlaskForm):
    """A POST with only a CSRF token (deleting a policy or a holiday)."""
