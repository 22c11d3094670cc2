"""Editable fields, declared once per entity.

A service lists the fields people may set on its entity as a `Spec`: each field's name, type, label, limits or
choices, default and help. Everything else is derived from that one list:

- **validation** (`Spec.validate`), type-strict on JSON: a string where a number is wanted is an error. Every
  bad value is named in `InvalidPayload.fields` ({name: message}); the API answers 422 with them, a page shows
  each message next to its field.
- **the page's form** (`Spec.form`): a FlaskForm whose inputs render the fields (and carry the CSRF token).
  A form only collects what was typed: `SpecForm.payload()` reads its strings into the JSON shapes (digits
  become a number, a ticked box true, a comma-separated line a list) and the service validates that payload
  with the same `Spec.validate` as the API's, so the same bad value gets the same message on both.
- **the JSON output** (`Spec.dump`) and **the OpenAPI schemas** (`Spec.write_schema`, `Spec.read_schema`).

Adding a field is one line in the service's Spec, plus the model column and its migration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from enum import Enum
from functools import cache, cached_property
from typing import Any, ClassVar
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField, widgets
from wtforms.fields.core import UnboundField

from webapp.errors import InvalidPayload
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


# --- the field types -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Field:
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

    @property
    def key(self) -> str:
        return self.attr or self.name

    # validation: a JSON value in, the stored value out (Invalid with the message otherwise)
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

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def initial(self) -> Any:
        """The value of a new row."""
        return list(self.default) if isinstance(self.default, list | tuple) else self.default

    # the JSON output
    def dump(self, value: Any) -> Any:
        return value

    # the page: what the form field holds -> the JSON value, and a stored value -> what the field shows
    def read_form(self, data: Any) -> Any:
        return data

    def form_value(self, value: Any) -> Any:
        return "" if value is None else value

    def form_field(self) -> UnboundField:
        return StringField(self.label, description=self.help, default=self.form_value(self.initial()))

    # OpenAPI
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

    # the audit log
    def change(self, old: Any, new: Any) -> Any:
        """How the audit log records a change of this field (None: it did not change)."""
        before, after = self.dump(old), self.dump(new)
        return None if before == after else [before, after]


@dataclass(frozen=True, kw_only=True)
class Text(Field):
    """A line of text, stripped; empty means none (or `default`, when `blank_is_default`)."""

    max_length: int = 255
    blank_is_default: bool = False

    def is_empty(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and not value.strip())

    def empty(self) -> Any:
        return self.default if self.blank_is_default else None

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

    def type_schema(self) -> dict:
        nullable = not self.required or self.blank_is_default
        return {"type": ["string", "null"] if nullable else "string"}

    def limits_schema(self) -> dict:
        minimum = {"minLength": 1} if self.required and not self.blank_is_default else {}
        return {**minimum, "maxLength": self.max_length}

    def form_field(self) -> UnboundField:
        return StringField(
            self.label,
            description=self.help,
            default=self.form_value(self.initial()),
            render_kw={"maxlength": self.max_length},
        )


@dataclass(frozen=True, kw_only=True)
class Email(Text):
    """An email address, normalised (lower case)."""

    max_length: int = 254

    def parse(self, value: Any) -> Any:
        value = super().parse(value)
        try:
            return normalise_email(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    def limits_schema(self) -> dict:
        return {**super().limits_schema(), "format": "email"}

    def form_field(self) -> UnboundField:
        return EmailField(self.label, description=self.help, default=self.form_value(self.initial()))


@dataclass(frozen=True, kw_only=True)
class Secret(Field):
    """A write-only secret (a password): never shown back, stored sealed in `attr` by `seal`.

    JSON: a string sets it, "" clears it, null or the mask (********) keeps it. A page's password box starts
    empty, so there empty keeps it."""

    max_length: int = 500
    seal: Callable[[str], str] = str

    def check(self, value: Any) -> Any:
        if value is None or value == MASK:
            return KEEP
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

    def form_field(self) -> UnboundField:
        return PasswordField(self.label, description=self.help, render_kw={"autocomplete": "new-password"})

    def write_schema(self) -> dict:
        return {
            "type": ["string", "null"],
            "maxLength": self.max_length,
            "writeOnly": True,
            "description": f'write-only: null or {MASK} keeps the stored one, "" clears it',
        }

    def read_schema(self) -> dict:
        return {"enum": [MASK, None], "description": f"never shown: {MASK} when one is stored"}


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

    def form_field(self) -> UnboundField:
        bounds = {k: v for k, v in (("min", self.minimum), ("max", self.maximum)) if v is not None}
        return StringField(
            self.label,
            description=self.help,
            default=self.form_value(self.initial()),
            widget=widgets.NumberInput(),
            render_kw={**bounds, "inputmode": "numeric"},
        )

    def limits_schema(self) -> dict:
        bounds = (("minimum", self.minimum), ("maximum", self.maximum))
        return {k: v for k, v in bounds if v is not None}


@dataclass(frozen=True, kw_only=True)
class Boolean(Field):
    """Yes or no (a checkbox on a page)."""

    default: bool = False
    json_type: ClassVar[str] = "boolean"

    def check(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise Invalid("Must be true or false.")
        return value

    def read_form(self, data: Any) -> Any:
        return bool(data)

    def form_value(self, value: Any) -> Any:
        return bool(value)

    def form_field(self) -> UnboundField:
        return BooleanField(self.label, description=self.help, default=self.form_value(self.initial()))

    def type_schema(self) -> dict:
        return {"type": "boolean"}


def _json_key(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True, kw_only=True)
class Choice(Field):
    """One of `choices` (enum members, strings or numbers); `labels` name them on a page."""

    choices: Sequence[Any] = ()
    labels: Mapping[Any, str] | None = None

    def _by_json(self) -> dict[Any, Any]:
        return {_json_key(c): c for c in self.choices}

    def _message(self) -> str:
        return f"Not a valid choice: use one of {', '.join(str(_json_key(c)) for c in self.choices)}."

    def _one(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise Invalid(self._message())
        by_json = self._by_json()
        if value not in by_json or type(_json_key(by_json[value])) is not type(value):
            raise Invalid(self._message())
        return by_json[value]

    def check(self, value: Any) -> Any:
        return self._one(value)

    def dump(self, value: Any) -> Any:
        return None if value is None else _json_key(value)

    def form_choices(self) -> list[tuple[str, str]]:
        labels = self.labels or {}
        return [(str(_json_key(c)), labels.get(c, str(_json_key(c)))) for c in self.choices]

    def _read_one(self, data: Any) -> Any:
        by_text = {str(_json_key(c)): _json_key(c) for c in self.choices}
        return by_text.get(data, data)

    def read_form(self, data: Any) -> Any:
        return self._read_one(data)

    def form_value(self, value: Any) -> Any:
        return "" if value is None else str(_json_key(value))

    def form_field(self) -> UnboundField:
        return SelectField(
            self.label,
            choices=self.form_choices(),
            description=self.help,
            default=self.form_value(self.initial()),
            validate_choice=False,
        )

    def type_schema(self) -> dict:
        return {"enum": [_json_key(c) for c in self.choices]}


@dataclass(frozen=True, kw_only=True)
class Choices(Choice):
    """Any number of `choices` (checkboxes); stored in the choices' order, each once."""

    default: tuple = ()

    def initial(self) -> Any:
        return [_json_key(c) for c in self.default]

    def check(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"A list of choices from {', '.join(str(_json_key(c)) for c in self.choices)}.")
        picked = {_json_key(self._one(item)) for item in value}
        return [_json_key(c) for c in self.choices if _json_key(c) in picked]

    def dump(self, value: Any) -> Any:
        return list(value or [])

    def read_form(self, data: Any) -> Any:
        return [self._read_one(item) for item in data or []]

    def form_value(self, value: Any) -> Any:
        return [str(item) for item in value or []]

    def form_field(self) -> UnboundField:
        return MultiCheckboxField(
            self.label,
            choices=self.form_choices(),
            description=self.help,
            default=self.form_value(self.initial()),
            validate_choice=False,
        )

    def type_schema(self) -> dict:
        return {"type": "array", "items": {"enum": [_json_key(c) for c in self.choices]}}


@dataclass(frozen=True, kw_only=True)
class TextList(Field):
    """Free-text entries (a comma-separated line on a page), each once, in the order given."""

    default: tuple = ()
    max_items: int = 50
    max_length: int = 60

    def check(self, value: Any) -> Any:
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


_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True, kw_only=True)
class Clock(Field):
    """A time of day, HH:MM (24-hour)."""

    def parse(self, value: Any) -> Any:
        match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise Invalid("Use HH:MM (24-hour), e.g. 22:00.")
        return time(int(match[1]), int(match[2]))

    def dump(self, value: Any) -> Any:
        return None if value is None else value.strftime("%H:%M")

    def read_form(self, data: Any) -> Any:
        return (data or "").strip() or None

    def form_value(self, value: Any) -> Any:
        return "" if value is None else value.strftime("%H:%M")

    def form_field(self) -> UnboundField:
        return StringField(self.label, description=self.help, widget=widgets.TimeInput())

    def limits_schema(self) -> dict:
        return {"pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}


_DAY_MINUTE = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True, kw_only=True)
class DayMinute(Field):
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

    def form_value(self, value: Any) -> Any:
        return self.dump(value) or ""

    def read_form(self, data: Any) -> Any:
        return (data or "").strip() or None

    def form_field(self) -> UnboundField:
        return StringField(
            self.label,
            description=self.help,
            default=self.form_value(self.initial()),
            render_kw={"maxlength": 5, "placeholder": self.example},
        )

    def limits_schema(self) -> dict:
        return {"pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$|^24:00$"}


@dataclass(frozen=True, kw_only=True)
class Day(Field):
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

    def read_form(self, data: Any) -> Any:
        return (data or "").strip() or None

    def form_value(self, value: Any) -> Any:
        return self.dump(value) or ""

    def form_field(self) -> UnboundField:
        return StringField(self.label, description=self.help, widget=widgets.DateInput())

    def limits_schema(self) -> dict:
        return {"format": "date"}


@dataclass(frozen=True, kw_only=True)
class TimeZone(Field):
    """An IANA time zone picked from the list (`timezone_choices`)."""

    default: str = "UTC"
    required: bool = True

    def check(self, value: Any) -> Any:
        if not isinstance(value, str) or value.strip() not in _zones():
            raise Invalid("Unknown time zone. Pick a time zone from the list, e.g. Europe/Paris.")
        return value.strip()

    def form_field(self) -> UnboundField:
        return SelectField(
            self.label,
            choices=timezone_choices(),
            description=self.help,
            default=self.initial(),
            validate_choice=False,
        )

    def type_schema(self) -> dict:
        return {"type": "string"}

    def limits_schema(self) -> dict:
        return {"minLength": 1, "maxLength": 64, "description": "an IANA time zone, e.g. Europe/Paris"}


# --- the list of an entity's fields ------------------------------------------------------------------

Check = Callable[[Mapping[str, Any]], Mapping[str, str]]


@dataclass(frozen=True)
class Spec:
    """The editable fields of one entity (`noun` names it in messages), and the rules between fields (`checks`:
    given the values a row would have, {field: message} for each that breaks a rule)."""

    noun: str
    fields: tuple[Field, ...]
    checks: tuple[Check, ...] = field(default=())

    def __getitem__(self, name: str) -> Field:
        return self.by_name[name]

    @cached_property
    def by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def initial(self) -> dict[str, Any]:
        """The values of a new row, by model attribute (a secret has none)."""
        return {f.key: f.initial() for f in self.fields if not isinstance(f, Secret)}

    def values_of(self, row: object) -> dict[str, Any]:
        return {f.name: getattr(row, f.key) for f in self.fields}

    def validate(
        self,
        payload: Mapping[str, Any],
        *,
        current: Mapping[str, Any] | None = None,
        partial: bool = False,
        also: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The values to store, by field name: those given (partial), or every field, the omitted ones at their
        defaults. Keys other than the fields and `also` are refused; the rules between fields are checked on
        `current` (the row's values) with the new values over it. InvalidPayload names every bad field."""
        unknown = sorted(set(payload) - set(self.names) - set(also))
        if unknown:
            raise InvalidPayload("Unknown fields.", {name: "unknown field" for name in unknown[:20]})
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in self.fields:
            if f.name in payload:
                try:
                    values[f.name] = f.check(payload[f.name])
                except Invalid as exc:
                    errors[f.name] = str(exc)
            elif not partial:
                if f.required and f.initial() is None:
                    errors[f.name] = f.required_message
                else:
                    values[f.name] = f.initial()
        merged = {**(current or {}), **values}
        for check in self.checks:
            for name, message in check(merged).items():
                if name not in errors and (name in values or not partial):
                    errors[name] = message
        if errors:
            raise InvalidPayload(f"Not a valid {self.noun}.", errors)
        return values

    def apply(self, row: object, values: Mapping[str, Any]) -> dict[str, Any]:
        """Set `values` on `row`; returns {field: [old, new]} of what changed (secrets: "changed"/"cleared")."""
        changes: dict[str, Any] = {}
        for name, value in values.items():
            f = self[name]
            old = getattr(row, f.key, None)
            if isinstance(f, Secret):
                if value is KEEP or (value == "" and not old):
                    continue
                setattr(row, f.key, f.seal(value) if value else None)
                changes[name] = "changed" if value else "cleared"
                continue
            change = f.change(old, value)
            if change is not None:
                setattr(row, f.key, value)
                changes[name] = change
        return changes

    def dump(self, row: object) -> dict[str, Any]:
        """The fields of `row` as the API shows them."""
        return {f.name: f.dump(getattr(row, f.key)) for f in self.fields}

    def form_data(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What a page's form shows for these values (by field name, or by model attribute)."""
        return {f.name: f.form_value(values.get(f.name, values.get(f.key))) for f in self.fields}

    def write_schema(self) -> dict[str, dict]:
        return {f.name: f.write_schema() for f in self.fields}

    def read_schema(self) -> dict[str, dict]:
        return {f.name: f.read_schema() for f in self.fields}

    def required(self) -> list[str]:
        """The fields a create must give: required, with no default."""
        return [f.name for f in self.fields if f.required and f.initial() is None]

    def form(self, name: str) -> type[SpecForm]:
        """A FlaskForm class with one input per field (subclass it to add inputs that are not fields)."""
        return type(name, (SpecForm,), {"spec": self, **{f.name: f.form_field() for f in self.fields}})


class SpecForm(FlaskForm):
    """A page's form derived from a Spec: it collects what was typed; the service validates it."""

    spec: ClassVar[Spec]
    inputs: ClassVar[dict[str, str]] = {}  # {payload key: form input} for inputs the form names otherwise

    def payload(self) -> dict[str, Any]:
        """What was typed, in the JSON shapes `Spec.validate` reads."""
        return {f.name: f.read_form(self[f.name].data) for f in self.spec.fields if f.name in self}

    def show(self, error: InvalidPayload) -> None:
        """Put each message of `error` next to its field (others above the form)."""
        for name, message in error.fields.items():
            name = self.inputs.get(name, name)
            if name in self:
                self[name].errors = [*self[name].errors, message]
            else:
                self.form_errors.append(message)
        if not error.fields:
            self.form_errors.append(error.message)

    def sections(self) -> list[tuple[str, list[tuple[Any, int]]]]:
        """[(heading, [(bound field, width)])] in the Spec's order, for a page that lays the fields out."""
        out: list[tuple[str, list[tuple[Any, int]]]] = []
        for f in self.spec.fields:
            if not out or out[-1][0] != f.section:
                out.append((f.section, []))
            out[-1][1].append((self[f.name], f.width))
        return out
