"""/api/v1/auth: who am I."""

from __future__ import annotations

from flask import g

from webapp.api import bp
from webapp.api.access import api_required


@bp.get("/auth/verify")
@api_required("read")
def verify():
    principal = g.principal
    key = principal.api_key
    return {
        "authenticated": True,
        "scope": principal.scope,
        "user": None if principal.user is None else {"id": principal.user.id, "email": principal.user.email},
        "api_key": None if key is None else {"id": key.id, "name": key.name, "prefix": key.prefix},
        "customer_ids": None if principal.customer_ids is None else sorted(principal.customer_ids),
    }
