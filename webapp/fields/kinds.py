"""The kinds of editable field (text, email, secret, whole number, yes/no, one or several choices, ...).

Each kind knows, for one field: how to check a JSON value (type-strict) into the stored value, with the
message to show when it cannot; how to read what a page's input holds into that JSON shape; how to show a
stored value on a page and in JSON; its OpenAPI schema; and which WTForms input renders it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from enum import Enum
from functools import cache
from typing import Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from wtforms import BooleanField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField, widgets
from wtforms.fields.core import UnboundField

from webapp import egress
from webapp.validation import normalise_email

REQUIRED = "This field is required."
MASK = "********"  # what a stored secret reads as; sent back unchanged, it keeps the secret


class Invalid(ValueError):
    """One value is not acceptable; the message says what would be."""


class _Keep:
    """A secret left as it is (not sent, null, or the mask sent back)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


@cache
def timezone_choices() -> list[tuple[str, str]]:
    """The IANA zones people pick from (Area/City names, and UTC)."""
    return [(name, name) for name in sorted(available_timezones()) if "/" in name or name == "UTC"]


@cache
def _zones() -> frozenset[str]:
    return frozenset(name for name, _ in timezone_choices())


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as a list of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


@dataclass(frozen=True, kw_only=True)
class Field(ABC):
    """One editable field. `default` is the value of a new row (and what a full replace returns an omitted
    field to); `required` refuses an empty value (null, or an empty text) instead of storing "none"."""

    name: str
    label: str
    default: Any = None
    required: bool = False
    required_message: str = REQUIRED
    help: str = ""
    section: str = ""  # the heading a page groups it under
    width: int = 12  # of 12 columns on a page
    attr: str | None = None  # the model attribute, when it is not the name

    json_type: ClassVar[str] = "string"
    input_class: ClassVar[type] = StringField

    @property
    def key(self) -> str:
        return self.attr or self.name

    # --- checking: a JSON value in, the stored value out (Invalid with the message otherwise) ---

    def check(self, value: Any) -> Any:
        if self.is_empty(value):
            if self.required:
                raise Invalid(self.required_message)
            return self.empty()
        return self.parse(value)

    def is_empty(self, value: Any) -> bool:
        return value is None

    def empty(self) -> Any:
        return None

    @abstractmethod
    def parse(self, value: Any) -> Any:
        """A value that is not empty -> the stored value."""

    def initial(self) -> Any:
        """The value of a new row."""
        return list(self.default) if isinstance(self.default, list | tuple) else self.default

    # --- showing it: JSON, the audit log ---

    def dump(self, value: Any) -> Any:
        return value

    def change(self, old: Any, new: Any) -> Any:
        """How the audit log records a change of this field (None: it did not change)."""
        before, after = self.dump(old), self.dump(new)
        return None if before == after else [before, after]

    # --- the page: what an input holds -> the JSON value; a stored value -> what the input shows ---

    def read_form(self, data: Any) -> Any:
        return data

    def form_value(self, value: Any) -> Any:
        return "" if value is None else value

    def input_options(self) -> dict[str, Any]:
        return {}

    def form_field(self) -> UnboundField:
        default = self.form_value(self.initial())
        return self.input_class(self.label, description=self.help, default=default, **self.input_options())

    # --- OpenAPI ---

    def type_schema(self) -> dict:
        return {"type": self.json_type if self.required else [self.json_type, "null"]}

    def limits_schema(self) -> dict:
        return {}

    def write_schema(self) -> dict:
        schema = {**self.type_schema(), **self.limits_schema()}
        if self.help:
            schema["description"] = self.help
        return schema

    def read_schema(self) -> dict:
        return self.type_schema()


@dataclass(frozen=True, kw_only=True)
class Text(Field):
    """A line of text, stripped; empty means none (or `default`, when `blank_is_default`)."""

    max_length: int = 255
    blank_is_default: bool = False

    def is_empty(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and not value.strip())

    def check(self, value: Any) -> Any:
        if self.blank_is_default and self.is_empty(value):
            return self.default
        return super().check(value)

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise Invalid("Must be text.")
        value = value.strip()
        if len(value) > self.max_length:
            raise Invalid(f"At most {self.max_length} characters.")
        return value

    def input_options(self) -> dict[str, Any]:
        return {"render_kw": {"maxlength": self.max_length}}

    def type_schema(self) -> dict:
        nullable = not self.required or self.blank_is_default
        return {"type": ["string", "null"] if nullable else "string"}

    def limits_schema(self) -> dict:
        minimum = {"minLength": 1} if self.required and not self.blank_is_default else {}
        return {**minimum, "maxLength": self.max_length}


@dataclass(frozen=True, kw_only=True)
class Email(Text):
    """An email address, normalised (lower case)."""

    max_length: int = 254
    input_class: ClassVar[type] = EmailField

    def parse(self, value: Any) -> Any:
        value = super().parse(value)
        try:
            return normalise_email(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    def input_options(self) -> dict[str, Any]:
        return {}

    def limits_schema(self) -> dict:
        return {**super().limits_schema(), "format": "email"}


@dataclass(frozen=True, kw_only=True)
class Secret(Field):
    """A write-only secret (a password): never shown back, stored sealed in `attr` by `seal`.

    JSON: a string sets it, "" clears it, null or the mask (********) keeps it. A page's password box starts
    empty, so there empty keeps it."""

    max_length: int = 500
    seal: Callable[[str], str] = str
    # The fields naming where the secret goes (host, port, ...): changing one without giving the secret again
    # clears it, so a stored password is never handed to a server other than the one it was set for.
    bound_to: tuple[str, ...] = ()
    input_class: ClassVar[type] = PasswordField

    def is_empty(self, value: Any) -> bool:
        return value is None or value == MASK

    def empty(self) -> Any:
        return KEEP

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise Invalid("Must be text.")
        if len(value) > self.max_length:
            raise Invalid(f"At most {self.max_length} characters.")
        return value

    def initial(self) -> Any:
        return KEEP

    def dump(self, value: Any) -> Any:
        return MASK if value else None

    def read_form(self, data: Any) -> Any:
        return data or None

    def form_value(self, value: Any) -> Any:
        return ""

    def input_options(self) -> dict[str, Any]:
        return {"render_kw": {"autocomplete": "new-password"}}

    def write_schema(self) -> dict:
        return {
            "type": ["string", "null"],
            "maxLength": self.max_length,
            "writeOnly": True,
            "description": f'write-only: null or {MASK} keeps the stored one, "" clears it',
        }

    def read_schema(self) -> dict:
        return {"enum": [MASK, None], "description": f"never shown: {MASK} when one is stored"}


@dataclass(frozen=True, kw_only=True)
class SecretUrl(Secret):
    """A URL that is itself the credential (a Slack or Teams incoming webhook: whoever holds it posts): write-only
    like a password, an http(s) URL, and never aimed at an address the egress policy refuses (checked again when
    a connection is made)."""

    max_length: int = 2000

    def parse(self, value: Any) -> Any:
        value = super().parse(value).strip()
        if not value:
            return ""  # clears it
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
            raise Invalid("Enter the incoming webhook's http(s) URL.")
        if egress.check_host(parts.hostname):
            raise Invalid(f"This address is {egress.BLOCKED}: loopback, private and metadata addresses are refused.")
        return value


_INTEGER = re.compile(r"[+-]?\d{1,15}")


@dataclass(frozen=True, kw_only=True)
class Integer(Field):
    """A whole number within [minimum, maximum]."""

    minimum: int | None = None
    maximum: int | None = None

    json_type: ClassVar[str] = "integer"

    def parse(self, value: Any) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid("Enter a whole number.")
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                raise Invalid(f"Number must be between {low} and {high}.")
            raise Invalid(f"Number must be at least {low}." if low is not None else f"Number must be at most {high}.")
        return value

    def read_form(self, data: Any) -> Any:
        text = (data or "").strip()
        if not text:
            return None
        return int(text) if _INTEGER.fullmatch(text) else text

    def form_value(self, value: Any) -> Any:
        return "" if value is None else str(value)

    def input_options(self) -> dict[str, Any]:
        bounds = {k: v for k, v in (("min", self.minimum), ("max", self.maximum)) if v is not None}
        return {"widget": widgets.NumberInput(), "render_kw": {**bounds, "inputmode": "numeric"}}

    def limits_schema(self) -> dict:
        bounds = (("minimum", self.minimum), ("maximum", self.maximum))
        return {k: v for k, v in bounds if v is not None}


@dataclass(frozen=True, kw_only=True)
class Boolean(Field):
    """Yes or no (a checkbox on a page)."""

    default: bool = False
    json_type: ClassVar[str] = "boolean"
    input_class: ClassVar[type] = BooleanField

    def is_empty(self, value: Any) -> bool:
        return False

    def parse(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise Invalid("Must be true or false.")
        return value

    def read_form(self, data: Any) -> Any:
        return bool(data)

    def form_value(self, value: Any) -> Any:
        return bool(value)

    def type_schema(self) -> dict:
        return {"type": "boolean"}


def _json_key(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True, kw_only=True)
class Choice(Field):
    """One of `choices` (enum members, strings or numbers); `labels` name them on a page."""

    choices: Sequence[Any] = ()
    labels: Mapping[Any, str] | None = None
    input_class: ClassVar[type] = SelectField

    def _keys(self) -> list[Any]:
        return [_json_key(c) for c in self.choices]

    def _one(self, value: Any) -> Any:
        """The choice `value` names (as JSON: the same type, a string is not a number)."""
        for choice in self.choices:
            key = _json_key(choice)
            if key == value and type(key) is type(value):
                return choice
        raise Invalid(f"Not a valid choice: use one of {', '.join(map(str, self._keys()))}.")

    def is_empty(self, value: Any) -> bool:
        return False

    def parse(self, value: Any) -> Any:
        return self._one(value)

    def dump(self, value: Any) -> Any:
        return None if value is None else _json_key(value)

    def form_choices(self) -> list[tuple[str, str]]:
        labels = self.labels or {}
        return [(str(_json_key(c)), labels.get(c, str(_json_key(c)))) for c in self.choices]

    def _read_one(self, data: Any) -> Any:
        return {str(key): key for key in self._keys()}.get(data, data)

    def read_form(self, data: Any) -> Any:
        return self._read_one(data)

    def form_value(self, value: Any) -> Any:
        return "" if value is None else str(_json_key(value))

    def input_options(self) -> dict[str, Any]:
        return {"choices": self.form_choices(), "validate_choice": False}

    def type_schema(self) -> dict:
        return {"enum": self._keys()}


@dataclass(frozen=True, kw_only=True)
class Choices(Choice):
    """Any number of `choices` (checkboxes); stored in the choices' order, each once."""

    default: tuple = ()
    input_class: ClassVar[type] = MultiCheckboxField

    def initial(self) -> Any:
        return [_json_key(c) for c in self.default]

    def parse(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"A list of choices from {', '.join(map(str, self._keys()))}.")
        picked = {_json_key(self._one(item)) for item in value}
        return [key for key in self._keys() if key in picked]

    def dump(self, value: Any) -> Any:
        return list(value or [])

    def read_form(self, data: Any) -> Any:
        return [self._read_one(item) for item in data or []]

    def form_value(self, value: Any) -> Any:
        return [str(item) for item in value or []]

    def type_schema(self) -> dict:
        return {"type": "array", "items": {"enum": self._keys()}}


@dataclass(frozen=True, kw_only=True)
class TextList(Field):
    """Free-text entries (a comma-separated line on a page), each once, in the order given."""

    default: tuple = ()
    max_items: int = 50
    max_length: int = 60

    def is_empty(self, value: Any) -> bool:
        return False

    def parse(self, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise Invalid("A list of non-empty texts.")
        value = list(dict.fromkeys(v.strip() for v in value))
        if len(value) > self.max_items:
            raise Invalid(f"At most {self.max_items} entries.")
        if any(len(v) > self.max_length for v in value):
            raise Invalid(f"Each entry at most {self.max_length} characters.")
        return value

    def dump(self, value: Any) -> Any:
        return list(value or [])

    def read_form(self, data: Any) -> Any:
        return [part.strip() for part in (data or "").replace("\n", ",").split(",") if part.strip()]

    def form_value(self, value: Any) -> Any:
        return ", ".join(value or [])

    def type_schema(self) -> dict:
        return {"type": "array", "items": {"type": "string"}}

    def limits_schema(self) -> dict:
        items = {"type": "string", "minLength": 1, "maxLength": self.max_length}
        return {"items": items, "maxItems": self.max_items}


@dataclass(frozen=True, kw_only=True)
class _Written(Field):
    """A value people write in a fixed format (a time, a date): the page's input holds the JSON text."""

    def read_form(self, data: Any) -> Any:
        return (data or "").strip() or None

    def form_value(self, value: Any) -> Any:
        return self.dump(value) or ""


_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True, kw_only=True)
class Clock(_Written):
    """A time of day, HH:MM (24-hour)."""

    def parse(self, value: Any) -> Any:
        match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise Invalid("Use HH:MM (24-hour), e.g. 22:00.")
        return time(int(match[1]), int(match[2]))

    def dump(self, value: Any) -> Any:
        return None if value is None else value.strftime("%H:%M")

    def input_options(self) -> dict[str, Any]:
        return {"widget": widgets.TimeInput()}

    def limits_schema(self) -> dict:
        return {"pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}


_DAY_MINUTE = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True, kw_only=True)
class DayMinute(_Written):
    """A time of day stored as minutes after midnight, HH:MM from 00:00 to 24:00 (the end of the day)."""

    example: str = "09:00"

    def parse(self, value: Any) -> Any:
        match = _DAY_MINUTE.fullmatch(value.strip()) if isinstance(value, str) else None
        minutes = int(match[1]) * 60 + int(match[2]) if match else -1
        if match is None or int(match[2]) > 59 or not 0 <= minutes <= 1440:
            raise Invalid(f"Use HH:MM, e.g. {self.example}.")
        return minutes

    def dump(self, value: Any) -> Any:
        return None if value is None else f"{value // 60:02d}:{value % 60:02d}"

    def input_options(self) -> dict[str, Any]:
        return {"render_kw": {"maxlength": 5, "placeholder": self.example}}

    def limits_schema(self) -> dict:
        return {"pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$|^24:00$"}


@dataclass(frozen=True, kw_only=True)
class Day(_Written):
    """A calendar date, YYYY-MM-DD."""

    def parse(self, value: Any) -> Any:
        try:
            if not isinstance(value, str) or len(value) != 10:
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise Invalid("Use a date as YYYY-MM-DD, e.g. 2026-12-25.") from None

    def dump(self, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def input_options(self) -> dict[str, Any]:
        return {"widget": widgets.DateInput()}

    def limits_schema(self) -> dict:
        return {"format": "date"}


@dataclass(frozen=True, kw_only=True)
class TimeZone(Field):
    """An IANA time zone picked from the list (`timezone_choices`)."""

    default: str = "UTC"
    required: bool = True
    input_class: ClassVar[type] = SelectField

    def is_empty(self, value: Any) -> bool:
        return False

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str) or value.strip() not in _zones():
            raise Invalid("Unknown time zone. Pick a time zone from the list, e.g. Europe/Paris.")
        return value.strip()

    def input_options(self) -> dict[str, Any]:
        return {"choices": timezone_choices(), "validate_choice": False}

    def type_schema(self) -> dict:
        return {"type": "string"}

    def limits_schema(self) -> dict:
        return {"minLength": 1, "maxLength": 64, "description": "an IANA time zone, e.g. Europe/Paris"}
