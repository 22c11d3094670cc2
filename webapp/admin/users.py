"""Users: the list, for admins (management pages arrive with the admin-pages work)."""

from __future__ import annotations

from flask import current_app, render_template, request
from sqlalchemy import or_
from sqlalchemy.orm import selectinload

from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Role, User
from webapp.security import role_required


@bp.get("/users")
@role_required(Role.ADMIN)
def user_list():
    search = request.args.get("q", "").strip()[:100]
    query = db.select(User).options(selectinload(User.phone_numbers), selectinload(User.customers)).order_by(User.id)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(User.email.like(pattern), User.name.ilike(pattern)))
    page = db.paginate(query, per_page=current_app.config["PER_PAGE"], error_out=False)
    return render_template("admin/users/list.html", page=page, search=search)
