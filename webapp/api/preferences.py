"""/api/v1/preferences: notification preferences per user (and customer), and the caller's own.

The fields, their checks and their JSON come from PREFERENCE (webapp.services.people.preferences), whose
functions also decide who may write whose preferences: these views parse, call, commit and answer."""

from __future__ import annotations

from flask import abort, request

from webapp import tenancy
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
    responses,
)
from webapp.extensions import db
from webapp.inputs import query_int
from webapp.models import NotificationPreference
from webapp.services.people import preferences
from webapp.services.people.preferences import PREFERENCE


def preference_json(p: NotificationPreference) -> dict:
    return {
        "id": p.id,
        "user_id": p.user_id,
        "customer_id": p.customer_id,
        **PREFERENCE.dump(p),
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }


@bp.get("/preferences")
@limited
@api_required("read")
def preference_list():
    query = preferences.scoped(tenancy.current(), db.select(NotificationPreference).order_by(NotificationPreference.id))
    user_id = query_int("user_id")
    if user_id is not None:
        query = query.where(NotificationPreference.user_id == user_id)
    return {"items": [preference_json(p) for p in db.session.scalars(query.limit(1000))]}


@bp.get("/preferences/mine")
@limited
@api_required("read")
def preference_mine():
    own = tenancy.current().own_user_id
    if own is None:
        abort(404, description="This key is no person (it has no owner, or it acts for its customer): no preferences.")
    query = db.select(NotificationPreference).where(NotificationPreference.user_id == own)
    return {"items": [preference_json(p) for p in db.session.scalars(query.order_by(NotificationPreference.id))]}


@bp.post("/preferences")
@limited
@api_required("read")  # a viewer's token writes its own preferences; the service refuses read-only keys
def preference_create():
    pref = preferences.create(tenancy.current(), body())
    answer = preference_json(pref)
    db.session.commit()
    return answer, 201


@bp.get("/preferences/<int:pref_id>")
@limited
@api_required("read")
def preference_detail(pref_id: int):
    return preference_json(preferences.visible(tenancy.current(), pref_id))


@bp.route("/preferences/<int:pref_id>", methods=["PUT", "PATCH"])
@limited
@api_required("read")  # a viewer's token writes its own preferences; the service refuses read-only keys
def preference_update(pref_id: int):
    caller = tenancy.current()
    pref = preferences.changeable(caller, pref_id)
    preferences.update(caller, pref, body(), partial=request.method == "PATCH")
    answer = preference_json(pref)
    db.session.commit()
    return answer


@bp.delete("/preferences/<int:pref_id>")
@limited
@api_required("read")  # a viewer's token writes its own preferences; the service refuses read-only keys
def preference_delete(pref_id: int):
    caller = tenancy.current()
    preferences.delete(caller, preferences.changeable(caller, pref_id))
    db.session.commit()
    return "", 204


ADDRESS_PROPS = {
    "user_id": {"type": "integer", "minimum": 1, "description": "whose (default: the caller's own user)"},
    "customer_id": {"type": ["integer", "null"], "minimum": 1, "description": "null: all the user's customers"},
}
_LIST = {"type": "object", "properties": {"items": {"type": "array", "items": ref("Preference")}}}

OPENAPI_SCHEMAS = {
    "Preference": {
        "type": "object",
        "required": ["id", "user_id", "customer_id", *PREFERENCE.names],
        "properties": {
            "id": {"type": "integer"},
            "user_id": {"type": "integer"},
            "customer_id": {"type": ["integer", "null"]},
            **PREFERENCE.read_schema(),
            "created_at": DATETIME,
            "updated_at": DATETIME,
        },
    },
    "PreferenceWrite": {
        "type": "object",
        "additionalProperties": False,
        "properties": {**ADDRESS_PROPS, **PREFERENCE.write_schema()},
    },
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
            "summary": "Create a preference: your own (a key needs the write scope), or as an admin another user's",
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
