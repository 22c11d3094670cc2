"""The sign-in forms: log in, log out, and set a password from an invitation or reset link."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, PasswordField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.services.people.users import UserError, check_password_strength


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    remember = BooleanField("Keep me signed in")


class LogoutForm(FlaskForm):
    """Logging out is a POST with a CSRF token, so no other site can sign a user out."""


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField("Repeat it", validators=[DataRequired()])

    def validate_password(self, field: Field) -> None:
        try:
            check_password_strength(field.data or "")
        except UserError as exc:
            raise ValidationError(str(exc)) from None

    def validate_confirm(self, field: Field) -> None:
        if field.data != self.password.data:
            raise ValidationError("The two passwords differ.")
