"""/api/v1/preferences: notification preferences per user (and customer), and the caller's own."""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, g, request
from sqlalchemy.exc import IntegrityError

from webapp.api import bp
from webapp.api.access import api_required
from webapp.api.common import (
    DATETIME,
    body,
    iso,
    json_request,
    limited,
    path_id,
    query_param,
    ref,
    reject_unknown,
    responses,
)
from webapp.errors import InvalidPayload
from webapp.extensions import db
from webapp.inputs import is_id, query_int
from webapp.models import EVENT_TYPES, Channel, Customer, NotificationPreference, Severity, User, user_customer
from webapp.services import audit
from webapp.validation import normalise_email

DEFAULTS = {
    "enabled_channels": ["web", "email", "sms"],
    "min_severity_web": "low",
    "min_severity_email": "high",
    "min_severity_sms": "critical",
    "event_types": [],
    "job_types": [],
    "override_email": None,
    "timezone": "UTC",
    "quiet_hours_start": None,
    "quiet_hours_end": None,
    "critical_bypasses_quiet_hours": True,
    "max_notifications_per_hour": None,
    "enable_aggregation": False,
    "aggregation_window_seconds": 120,
}
FIELDS = {"user_id", "customer_id", *DEFAULTS}


def _hhmm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def preference_json(p: NotificationPreference) -> dict:
    return {
        "id": p.id,
        "user_id": p.user_id,
        "customer_id": p.customer_id,
        "enabled_channels": list(p.enabled_channels or []),
        "min_severity_web": str(p.min_severity_web),
        "min_severity_email": str(p.min_severity_email),
        "min_severity_sms": str(p.min_severity_sms),
        "event_types": list(p.event_types or []),
        "job_types": list(p.job_types or []),
        "override_email": p.override_email,
        "timezone": p.timezone,
        "quiet_hours_start": _hhmm(p.quiet_hours_start),
        "quiet_hours_end": _hhmm(p.quiet_hours_end),
        "critical_bypasses_quiet_hours": p.critical_bypasses_quiet_hours,
        "max_notifications_per_hour": p.max_notifications_per_hour,
        "enable_aggregation": p.enable_aggregation,
        "aggregation_window_seconds": p.aggregation_window_seconds,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }


def _visible_users():
    """User ids the caller may see: all (global), or members of the caller's customers."""
    if g.principal.customer_ids is None:
        return None
    return db.select(user_customer.c.user_id).where(user_customer.c.customer_id.in_(g.principal.customer_ids))


def _may_edit(user_id: int) -> bool:
    principal = g.principal
    own = principal.user is not None and principal.user.id == user_id
    return own or principal.allows("admin")


def _visible(pref_id: int) -> NotificationPreference:
    pref = db.session.get(NotificationPreference, pref_id)
    users = _visible_users()
    own = g.principal.user is not None and pref is not None and pref.user_id == g.principal.user.id
    if pref is None or not (own or users is None or pref.user_id in set(db.session.scalars(users))):
        abort(404, description="No such preference for this key.")
    return pref


def _string_list(value, allowed, name, errors, *, limit=50):
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) and v for v in value):
        errors[name] = f"a list of at most {limit} strings"
        return None
    if allowed is not None and any(v not in allowed for v in value):
        errors[name] = f"each one of {', '.join(allowed)}"
        return None
    if any(len(v) > 60 for v in value):
        errors[name] = "each at most 60 characters"
        return None
    return list(dict.fromkeys(value))


def _clock(value, name, errors):
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 5:
            raise ValueError
        return time.fromisoformat(value)
    except ValueError:
        errors[name] = "HH:MM (24-hour), or null"
        return None


def _validate(payload: dict, *, partial: bool) -> dict:
    reject_unknown(payload, FIELDS)
    source = payload if partial else {**DEFAULTS, **payload}
    errors: dict[str, str] = {}
    values: dict = {}
    for name, value in source.items():
        if name in ("user_id", "customer_id"):
            continue
        if name == "enabled_channels":
            values[name] = _string_list(value, [str(c) for c in Channel], name, errors)
        elif name.startswith("min_severity_"):
            if value not in set(Severity):
                errors[name] = f"one of {', '.join(Severity)}"
            else:
                values[name] = Severity(value)
        elif name == "event_types":
            values[name] = _string_list(value, list(EVENT_TYPES), name, errors)
        elif name == "job_types":
            values[name] = _string_list(value, None, name, errors)
        elif name == "override_email":
            if value is None or value == "":
                values[name] = None
            else:
                try:
                    if not isinstance(value, str):
                        raise ValueError("a string")
                    values[name] = normalise_email(value)
                except ValueError as exc:
                    errors[name] = str(exc)
        elif name == "timezone":
            try:
                if not isinstance(value, str) or not value or len(value) > 64:
                    raise ValueError
                ZoneInfo(value)
                values[name] = value
            except (ValueError, ZoneInfoNotFoundError):
                errors[name] = "an IANA time zone such as Europe/Paris"
        elif name in ("quiet_hours_start", "quiet_hours_end"):
            values[name] = _clock(value, name, errors)
        elif name in ("critical_bypasses_quiet_hours", "enable_aggregation"):
            if not isinstance(value, bool):
                errors[name] = "true or false"
            else:
                values[name] = value
        elif name == "max_notifications_per_hour":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 10000):
                errors[name] = "a whole number from 1 to 10000, or null for no cap"
            else:
                values[name] = value
        elif name == "aggregation_window_seconds":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 86400:
                errors[name] = "a whole number of seconds from 1 to 86400"
            else:
                values[name] = value
    if errors:
        raise InvalidPayload("Not a valid preference.", errors)
    return values


def _owner_and_customer(payload: dict) -> tuple[int, int | None]:
    principal = g.principal
    errors = {}
    user_id = payload.get("user_id", principal.user.id if principal.user else None)
    customer_id = payload.get("customer_id")
    if not is_id(user_id):
        errors["user_id"] = "required integer (this key has no user of its own)"
    else:
        users = _visible_users()
        visible = users is None or user_id in set(db.session.scalars(users))
        if db.session.get(User, user_id) is None or not (visible or _may_edit(user_id)):
            errors["user_id"] = "no such user for this key"
        elif not _may_edit(user_id):
            errors["user_id"] = "only the admin scope sets another user's preferences"
    if customer_id is not None and (
        not is_id(customer_id)
        or db.session.get(Customer, customer_id) is None
        or not principal.sees_customer(customer_id)
    ):
        errors["customer_id"] = "no such customer for this key (null: all of the user's customers)"
    if errors:
        raise InvalidPayload("Not a valid preference.", errors)
    return user_id, customer_id


@bp.get("/preferences")
@limited
@api_required("read")
def preference_list():
    query = db.select(NotificationPreference).order_by(NotificationPreference.id)
    users = _visible_users()
    if users is not None:
        own = g.principal.user.id if g.principal.user else -1
        query = query.where(NotificationPreference.user_id.in_(users) | (NotificationPreference.user_id == own))
    user_id = query_int("user_id")
    if user_id is not None:
        query = query.where(NotificationPreference.user_id == user_id)
    return {"items": [preference_json(p) for p in db.session.scalars(query.limit(1000))]}


@bp.get("/preferences/mine")
@limited
@api_required("read")
def preference_mine():
    user = g.principal.user
    if user is None:
        abort(404, description="This key has no user, so it has no preferences of its own.")
    query = db.select(NotificationPreference).where(NotificationPreference.user_id == user.id)
    return {"items": [preference_json(p) for p in db.session.scalars(query.order_by(NotificationPreference.id))]}


@bp.post("/preferences")
@limited
@api_required("write")
def preference_create():
    payload = body()
    values = _validate(payload, partial=False)
    user_id, customer_id = _owner_and_customer(payload)
    duplicate = db.select(NotificationPreference.id).where(
        NotificationPreference.user_id == user_id,
        NotificationPreference.customer_id.is_(None)
        if customer_id is None
        else NotificationPreference.customer_id == customer_id,
    )
    if db.session.scalar(duplicate) is not None:
        abort(409, description="This user already has a preference for this customer: update it instead.")
    pref = NotificationPreference(user_id=user_id, customer_id=customer_id, **values)
    db.session.add(pref)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        abort(409, description="This user already has a preference for this customer: update it instead.")
    audit.record(actor=g.principal.user, action="preference.create", target=pref, summary=f"user {user_id}")
    answer = preference_json(pref)
    db.session.commit()
    return answer, 201


@bp.get("/preferences/<int:pref_id>")
@limited
@api_required("read")
def preference_detail(pref_id: int):
    return preference_json(_visible(pref_id))


@bp.route("/preferences/<int:pref_id>", methods=["PUT", "PATCH"])
@limited
@api_required("write")
def preference_update(pref_id: int):
    pref = _visible(pref_id)
    if not _may_edit(pref.user_id):
        abort(403, description="Only the admin scope changes another user's preferences.")
    payload = body()
    if "user_id" in payload and payload["user_id"] != pref.user_id:
        raise InvalidPayload("Not a valid preference.", {"user_id": "cannot move a preference to another user"})
    if "customer_id" in payload and payload["customer_id"] != pref.customer_id:
        raise InvalidPayload("Not a valid preference.", {"customer_id": "cannot change; create another preference"})
    values = _validate(payload, partial=request.method == "PATCH")
    for name, value in values.items():
        setattr(pref, name, value)
    audit.record(actor=g.principal.user, action="preference.update", target=pref, summary=f"user {pref.user_id}")
    db.session.flush()
    answer = preference_json(pref)
    db.session.commit()
    return answer


@bp.delete("/preferences/<int:pref_id>")
@limited
@api_required("write")
def preference_delete(pref_id: int):
    pref = _visible(pref_id)
    if not _may_edit(pref.user_id):
        abort(403, description="Only the admin scope deletes another user's preferences.")
    audit.record(actor=g.principal.user, action="preference.delete", target=pref, summary=f"user {pref.user_id}")
    db.session.delete(pref)
    db.session.commit()
    return "", 204


_CHANNELS = {"type": "array", "items": {"enum": [str(c) for c in Channel]}, "maxItems": 4}
_SEVERITY = {"enum": [str(s) for s in Severity]}
_CLOCK = {"type": ["string", "null"], "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
PREF_PROPS = {
    "user_id": {"type": "integer", "minimum": 1},
    "customer_id": {"type": ["integer", "null"], "minimum": 1},
    "enabled_channels": _CHANNELS,
    "min_severity_web": _SEVERITY,
    "min_severity_email": _SEVERITY,
    "min_severity_sms": _SEVERITY,
    "event_types": {"type": "array", "items": {"enum": list(EVENT_TYPES)}, "maxItems": 50},
    "job_types": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 60}, "maxItems": 50},
    "override_email": {"type": ["string", "null"], "format": "email"},
    "timezone": {"type": "string", "description": "IANA zone"},
    "quiet_hours_start": _CLOCK,
    "quiet_hours_end": _CLOCK,
    "critical_bypasses_quiet_hours": {"type": "boolean"},
    "max_notifications_per_hour": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000},
    "enable_aggregation": {"type": "boolean"},
    "aggregation_window_seconds": {"type": "integer", "minimum": 1, "maximum": 86400},
}
_LIST = {"type": "object", "properties": {"items": {"type": "array", "items": ref("Preference")}}}

OPENAPI_SCHEMAS = {
    "Preference": {
        "type": "object",
        "required": ["id", "user_id", "enabled_channels"],
        "properties": {
            **{
                k: {key: val for key, val in v.items() if key not in ("minimum", "maxItems")}
                for k, v in PREF_PROPS.items()
            },
            "id": {"type": "integer"},
            "timezone": {"type": "string"},
            "override_email": {"type": ["string", "null"]},
            "created_at": DATETIME,
            "updated_at": DATETIME,
        },
    },
    "PreferenceWrite": {"type": "object", "additionalProperties": False, "properties": PREF_PROPS},
}

OPENAPI_PATHS = {
    "/api/v1/preferences": {
        "get": {
            "tags": ["preferences"],
            "summary": "List preferences the caller may see",
            "parameters": [query_param("user_id", {"type": "integer", "minimum": 1})],
            "responses": responses(200, _LIST),
        },
        "post": {
            "tags": ["preferences"],
            "summary": "Create a preference (write scope; admin scope for another user)",
            "requestBody": json_request(ref("PreferenceWrite")),
            "responses": responses(201, ref("Preference"), 403, 409, 413, 415, 422, description="Created"),
        },
    },
    "/api/v1/preferences/mine": {
        "get": {
            "tags": ["preferences"],
            "summary": "The caller's own preferences",
            "responses": responses(200, _LIST, 404),
        }
    },
    "/api/v1/preferences/{pref_id}": {
        "parameters": [path_id("pref_id")],
        "get": {
            "tags": ["preferences"],
            "summary": "One preference",
            "responses": responses(200, ref("Preference"), 404),
        },
        "put": {
            "tags": ["preferences"],
            "summary": "Replace a preference (omitted fields return to defaults)",
            "requestBody": json_request(ref("PreferenceWrite")),
            "responses": responses(200, ref("Preference"), 403, 404, 413, 415, 422),
        },
        "patch": {
            "tags": ["preferences"],
            "summary": "Change some fields of a preference",
            "requestBody": json_request(ref("PreferenceWrite")),
            "responses": responses(200, ref("Preference"), 403, 404, 413, 415, 422),
        },
        "delete": {
            "tags": ["preferences"],
            "summary": "Delete a preference",
            "responses": responses(204, None, 403, 404, description="Deleted"),
        },
    },
}
