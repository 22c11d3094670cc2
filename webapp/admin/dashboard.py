"""The dashboard: what needs attention now, and charts of the last day or week."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, render_template, request
from sqlalchemy.orm import selectinload

from webapp import tenancy
from webapp.admin import bp
from webapp.admin.integrations import alertmanager_url
from webapp.extensions import db
from webapp.models import Notification, Role, utcnow
from webapp.queue import get_queue
from webapp.services import sms_spend
from webapp.services.delivery import delivery_log
from webapp.services.overview import dashboard_queries, first_run, incident_queries, ops_status
from webapp.services.tickets import ticket_queries


@bp.get("/")
def dashboard():
    now = utcnow()
    principal = tenancy.current()
    days = 7 if request.args.get("range") == "7d" else 1
    incidents, incident_counts = incident_queries.open_incidents(principal)
    attention, at_risk_count, breached_count = dashboard_queries.tickets_needing_attention(principal, now=now)
    causes, failed_count = dashboard_queries.failure_causes(principal, now=now)
    ops = principal.allows(Role.OPERATOR)  # viewers: their customers' work, not the team's machinery
    newest_open, open_count = dashboard_queries.open_tickets(principal)
    by_status, by_channel = dashboard_queries.delivery_charts(principal, now=now, days=days)
    recent = (
        db.session.scalars(
            delivery_log.visible_to(principal, db.select(Notification))
            .options(selectinload(Notification.user), selectinload(Notification.event))
            .order_by(Notification.id.desc())
            .limit(20)
        ).all()
        if ops
        else []
    )
    health = ops_status.health(get_queue(current_app), now=now) if ops else None
    steps = first_run.checklist(principal.user) if principal.allows(Role.ADMIN) else []
    return render_template(
        "admin/dashboard.html",
        counts=dashboard_queries.status_counts(principal, since=now - timedelta(hours=24)),
        incidents=incidents,
        incident_counts=incident_counts,
        incident_age=lambda incident: incident_queries.age(incident, now),
        can_see=principal.can_see,
        can_change=principal.can_change,
        attention=attention,
        at_risk_count=at_risk_count,
        breached_count=breached_count,
        causes=causes,
        first_steps=steps if not all(step.done for step in steps) else [],
        alertmanager_url=alertmanager_url(),
        ops=ops,
        newest_open=newest_open,
        open_count=open_count,
        failed_count=failed_count,
        charts=[by_status, by_channel],
        days=days,
        compliance=dashboard_queries.sla_compliance(principal, now=now),
        spend=sms_spend.report(sms_spend.Month.of(now), principal=principal),
        recent=recent,
        health=health,
        oldest_job=ops_status.describe_age(health.oldest_job_age) if health else None,
        sla_state=lambda t: ticket_queries.sla_state(t, now),
        sms_simulated=current_app.extensions["opsrelay_sms"].simulated,
    )
