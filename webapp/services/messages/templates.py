"""Message templates: lookup with per-customer override, rendering in a bounded, immutable sandbox.

A template is code its editors write and every alert runs, in the web request that ingests it and in workers.
So the sandbox is immutable (a template cannot change the data it renders: no `labels.pop`), and one render is
bounded: MAX_OUTPUT characters out, MAX_ITERATIONS loop steps in all, numbers of at most MAX_INT_BITS bits,
no argument, repetition or format width beyond MAX_SIZE_ARGUMENT, and MAX_RENDER_SECONDS of time, checked at
every loop step, call, operator and filter (no signals or threads: safe in any worker). Whatever goes wrong is
a TemplateRenderError with a clear message, never an exception of another kind.
"""

from __future__ import annotations

import contextvars
import math
import re
import time
from functools import lru_cache, wraps

from jinja2 import Template, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import nulls_last

from webapp.extensions import db
from webapp.models import Channel, Event, MessageTemplate

MAX_OUTPUT = 100_000  # characters of one rendered template
MAX_ITERATIONS = 10_000  # loop steps of one render, all loops together
MAX_INT_BITS = 128  # {{ 9**9**9 }} is refused, not computed
MAX_SIZE_ARGUMENT = 10_000  # "x" * n, center(n), "{:>n}", range(n), ...
MAX_RENDER_SECONDS = 0.5
_WIDE_BRACES = re.compile(r"\{[^{}]*:[^{}]*\d{5,}[^{}]*\}")  # "{:>100000}"
_WIDE_PERCENT = re.compile(r"%[-+ #0]*(\d{5,}|\*)|%[-+ #0]*\d*\.(\d{5,}|\*)")  # "%100000s", "%*s"


class TemplateRenderError(Exception):
    """A template that does not render (syntax error, unsafe access, a limit); the message says where."""


class _TooBig(Exception):
    pass


class _Budget:
    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS
        self.steps = 0

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_ITERATIONS:
            raise _TooBig(f"more than {MAX_ITERATIONS} loop steps")
        self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise _TooBig(f"took longer than {MAX_RENDER_SECONDS:g} s")


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("opsrelay_template_budget", default=None)


def _check_time() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.check_time()


def _check_value(value) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _TooBig(f"a number over {MAX_INT_BITS} bits")
    if isinstance(value, float) and math.isfinite(value) and abs(value) > 2.0**MAX_INT_BITS:
        raise _TooBig(f"a number over {MAX_INT_BITS} bits")


def _check_size(value) -> None:
    """An argument that sizes something (a width, a count) stays small."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE_ARGUMENT:
        raise _TooBig(f"a size argument over {MAX_SIZE_ARGUMENT}")


def _check_format(value, pattern: re.Pattern) -> None:
    if isinstance(value, str) and pattern.search(value):
        raise _TooBig(f"a format width over {MAX_SIZE_ARGUMENT}")


def _guarded(iterable):
    """A loop's items, each one counted against the render's budget."""
    budget = _budget.get()
    for item in iterable:
        if budget is not None:
            budget.tick()
        yield item


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "//", "/", "%", "+"})

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.filters = {name: self._bounded_filter(f) for name, f in self.filters.items()}
        self.filters["opsrelay_loop"] = _guarded

    @staticmethod
    def _bounded_filter(function):
        formats = function.__name__ == "do_format"  # "%*s"|format(n, x): the value is the format

        @wraps(function)
        def bounded(*args, **kwargs):
            _check_time()
            plain = [a for a in args if not hasattr(a, "environment")]  # past the context jinja may pass
            if formats and plain:
                _check_format(plain[0], _WIDE_PERCENT)
            for value in (*plain[1:], *kwargs.values()):  # widths, counts, lengths
                _check_size(value)
            result = function(*args, **kwargs)
            if isinstance(result, str) and len(result) > MAX_OUTPUT:
                raise _TooBig(f"more than {MAX_OUTPUT} characters")
            return result

        return bounded

    def _parse(self, source, name, filename):
        """Every `for` loop iterates through the budget (one step counted per item)."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "opsrelay_loop", [], [], None, None, lineno=loop.lineno)
        return tree

    def call_binop(self, context, operator, left, right):
        _check_time()
        _check_value(left)
        _check_value(right)
        numbers = isinstance(left, int | float) and isinstance(right, int | float)
        if operator == "**" and numbers and abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
            raise _TooBig(f"a number over {MAX_INT_BITS} bits")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT:
                    raise _TooBig(f"more than {MAX_OUTPUT} characters or items")
        if operator == "%" and isinstance(left, str):
            _check_format(left, _WIDE_PERCENT)
        result = super().call_binop(context, operator, left, right)
        _check_value(result)
        return result

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja's own signature
        _check_time()
        formatted = getattr(getattr(__obj, "__wrapped__", None), "__self__", None)  # "...".format's string
        _check_format(formatted, _WIDE_BRACES)
        if isinstance(getattr(__obj, "__self__", None), str) and formatted is None:
            for value in (*args, *kwargs.values()):  # "x".center(n), "x".zfill(n), "x".expandtabs(n)
                _check_size(value)
        result = super().call(__context, __obj, *args, **kwargs)
        _check_value(result)
        return result

    def getattr(self, obj, attribute):
        _check_time()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        _check_time()
        return super().getitem(obj, argument)


_text_env = _BoundedEnvironment(autoescape=False, keep_trailing_newline=False)
_html_env = _BoundedEnvironment(autoescape=True)
_ENVIRONMENTS = {"text": _text_env, "html": _html_env}


def find(event_type: str, channel: Channel, *, customer_id: int | None) -> MessageTemplate | None:
    """The customer's own template for (event type, channel), else the global default."""
    return db.session.scalars(
        db.select(MessageTemplate)
        .where(
            MessageTemplate.event_type == event_type,
            MessageTemplate.channel == channel,
            (MessageTemplate.customer_id == customer_id) | MessageTemplate.customer_id.is_(None),
        )
        .order_by(nulls_last(MessageTemplate.customer_id.desc()))
        .limit(1)
    ).first()


def _render(kind: str, source: str, context: dict) -> str:
    token = None
    try:
        template = _compiled(kind, source)
        token = _budget.set(_Budget())  # from here: the render's time, not the (cached) compilation's
        parts, size = [], 0
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise _TooBig(f"more than {MAX_OUTPUT} characters")
            parts.append(chunk)
        return "".join(parts)
    except _TooBig as exc:
        raise TemplateRenderError(f"template too costly: {exc}") from None
    except TemplateError as exc:
        raise TemplateRenderError(f"template error: {exc}") from None
    except RecursionError:
        raise TemplateRenderError("template error: it calls itself too deeply") from None
    except Exception as exc:  # 1/0, int("x"), a missing key's method ...: this template's fault, said plainly
        raise TemplateRenderError(f"template error: {type(exc).__name__}: {str(exc)[:200]}") from None
    finally:
        if token is not None:
            _budget.reset(token)


def render_text(source: str, context: dict) -> str:
    return _render("text", source, context).strip()


def render_html(source: str, context: dict) -> str:
    """HTML (email bodies): every value is escaped unless the template marks it safe."""
    return _render("html", source, context)


@lru_cache(maxsize=512)
def _compiled(kind: str, source: str) -> Template:
    """A template's compiled form, kept by its source: compiling costs milliseconds, and every alert renders
    the same few templates. Compiled templates are immutable (the sandbox checks run while rendering), so
    threads share them; an edited template has a new source and compiles anew."""
    return _ENVIRONMENTS[kind].from_string(source)


def event_context(event: Event) -> dict:
    """What a template may use about an event: its fields, and for alerts the usual labels."""
    labels = event.labels or {}
    annotations = (event.data or {}).get("annotations", {})
    return {
        "event": {
            "id": event.id,
            "title": event.title,
            "body": event.body,
            "severity": str(event.severity),
            "status": str(event.status),
            "source": event.source,
            "event_type": event.event_type,
        },
        "labels": labels,
        "annotations": annotations,
        "alertname": labels.get("alertname", event.title),
        "service": labels.get("service") or labels.get("job", ""),
        "instance": labels.get("instance", ""),
        "severity": str(event.severity),
        "status": str(event.status),
        "summary": annotations.get("summary", event.title),
        "description": annotations.get("description", event.body),
        "truncated": _truncated(event),  # alerts Alertmanager left out of this group's notification
        "incident_id": event.incident_id,
        "job_url": (event.data or {}).get("job_url") or "",
    }


def _truncated(event: Event) -> int:
    value = (event.data or {}).get("truncatedAlerts")
    return value if isinstance(value, int) and value > 0 else 0
