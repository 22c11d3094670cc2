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

- `webapp.fields.kinds`: the kinds of field (Text, Email, Secret, Integer, Boolean, Choice, Choices, TextList,
  Clock, DayMinute, Day, TimeZone), each with its checks, messages, page input and schema.
- `webapp.fields.spec`: Spec (one entity's list) and SpecForm (the page's form made from it).
"""

from webapp.fields.kinds import (
    KEEP,
    MASK,
    REQUIRED,
    Boolean,
    Choice,
    Choices,
    Clock,
    Day,
    DayMinute,
    Email,
    Field,
    Integer,
    Invalid,
    MultiCheckboxField,
    Secret,
    SecretUrl,
    Text,
    TextList,
    TimeZone,
    timezone_choices,
)
from webapp.fields.spec import Spec, SpecForm

__all__ = [
    "KEEP",
    "MASK",
    "REQUIRED",
    "Boolean",
    "Choice",
    "Choices",
    "Clock",
    "Day",
    "DayMinute",
    "Email",
    "Field",
    "Integer",
    "Invalid",
    "MultiCheckboxField",
    "Secret",
    "SecretUrl",
    "Spec",
    "SpecForm",
    "Text",
    "TextList",
    "TimeZone",
    "timezone_choices",
]
