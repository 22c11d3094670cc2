"""The audit log: who changed what, when, from where (admins)."""

from __future__ import annotations

from flask import current_app, render_template, request

from webapp.admin import bp
from webapp.admin.pager import keyset_page
from webapp.extensions import db
from webapp.models import AuditLog, Role, User
from webapp.security import role_required


@bp.get("/audit")
@role_required(Role.ADMIN)
def audit_list():
    query = db.select(AuditLog)
    action = request.args.get("action", "").strip()[:60]
    if action:
        query = query.where(AuditLog.action.startswith(action, autoescape=True))
    actor = request.args.get("actor", "").strip()
    if actor.isdigit() and len(actor) < 10:
        query = query.where(AuditLog.actor_id == int(actor))
    target = request.args.get("target", "").strip()[:40]
    if target:
        query = query.where(AuditLog.target_type == target)
    page = keyset_page(query, AuditLog.id, per_page=current_app.config["PER_PAGE"])
    actor_ids = {row.actor_id for row in page.items if row.actor_id}
    actors = {u.id: u for u in db.session.scalars(db.select(User).where(User.id.in_(actor_ids)))}
    return render_template("admin/audit/list.html", page=page, actors=actors, action=action, actor=actor, target=target)
