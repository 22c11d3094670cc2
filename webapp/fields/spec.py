"""The list of an entity's editable fields (Spec) and the page form derived from it (SpecForm)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from flask_wtf import FlaskForm

from webapp.errors import InvalidPayload
from webapp.fields.kinds import KEEP, Field, Invalid, Secret

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
    def secrets(self) -> tuple[Secret, ...]:
        return tuple(f for f in self.fields if isinstance(f, Secret))

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
        refused: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The values to store, by field name: those given (partial), or every field, the omitted ones at their
        defaults. Keys other than the fields and `also` are refused; the rules between fields are checked on
        `current` (the row's values) with the new values over it. InvalidPayload names every bad field, with
        the caller's own `refused` ones (keys in `also` it found wrong)."""
        errors: dict[str, str] = dict(refused or {})
        unknown = sorted(set(payload) - set(self.names) - set(also))
        if unknown:
            raise InvalidPayload("Unknown fields.", {**errors, **{name: "unknown field" for name in unknown[:20]}})
        values: dict[str, Any] = {}
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
                errors.setdefault(name, message)
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
        for f in self.fields:  # a secret whose destination moved, and that was not given again, is cleared
            if (
                isinstance(f, Secret)
                and f.name not in changes
                and any(name in changes for name in f.bound_to)
                and getattr(row, f.key, None)
            ):
                setattr(row, f.key, None)
                changes[f.name] = "cleared"
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
