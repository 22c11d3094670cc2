"""incidents: one row per alert's life; existing events grouped into incidents; escalation and
acknowledgement move from events to incidents; the alert SMS says its severity and skips empty lines.

Existing events are grouped as the app now groups new ones: Alertmanager by fingerprint, PagerDuty by
incident id, generic senders and the events API by dedup key; a firing event opens an incident when none
is open for its key, a resolved one closes it. Escalation steps and acknowledgement notices join the
incident of the event they were about. An acknowledged event's incident becomes acknowledged (by the
same person, at the same time); an event's pending escalation becomes its incident's. Outgoing-webhook
filters naming event.created / event.resolved gain incident.triggered / incident.resolved, the names the
same alerts are sent under now.

Revision ID: a1c3e5f7b9d2
Revises: 21668592deb4
Create Date: 2026-12-01 18:00:00.000000

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "a1c3e5f7b9d2"
down_revision = "21668592deb4"
branch_labels = None
depends_on = None

# Frozen here: a revision never follows later changes to webapp.models.kinds.
INCIDENT_TYPES = ("alert", "job_failed", "job_partial", "compliance_violation")
SENDERS = ("alertmanager", "pagerduty", "generic", "api")
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

OLD_SMS = """\U0001f6a8 CRITICAL ALERT
{{ alertname }}
Service: {{ service }}
Instance: {{ instance }}
{{ summary }}"""
NEW_SMS = """{% if severity == 'critical' %}\U0001f6a8 CRITICAL ALERT{% else %}{{ severity|upper }} alert{% endif %}
{{ alertname }}
{% if service %}Service: {{ service }}
{% endif %}{% if instance %}Instance: {{ instance }}
{% endif %}{% if summary and summary != alertname %}{{ summary }}
{% endif %}{% if truncated %}+{{ truncated }} more alerts in this group were left out by Alertmanager{% endif %}"""


def upgrade():
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("open_key", sa.String(length=320), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "triggered",
                "acknowledged",
                "resolved",
                name="incidentstate",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "severity",
            sa.Enum(
                "info",
                "low",
                "medium",
                "high",
                "critical",
                name="severity",
                native_enum=False,
                create_constraint=True,
                length=12,
            ),
            nullable=False,
        ),
        sa.Column("severity_rank", sa.SmallInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("resend_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_via", sa.String(length=80), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_via", sa.String(length=80), nullable=True),
        sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_escalation_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("resend_count >= 0", name=op.f("ck_incident_resend_count_nonnegative")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_incident_customer_id_customer"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_incident_ticket_id_ticket"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"], ["user.id"], name=op.f("fk_incident_acknowledged_by_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["user.id"], name=op.f("fk_incident_resolved_by_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
        sa.UniqueConstraint("open_key", name=op.f("uq_incident_open_key")),
    )
    with op.batch_alter_table("incident") as batch_op:
        batch_op.create_index("ix_incident_source_key", ["source", "key", "id"])
        batch_op.create_index("ix_incident_state_id", ["state", "id"])
        batch_op.create_index("ix_incident_state_rank_id", ["state", "severity_rank", "id"])
        batch_op.create_index("ix_incident_customer_id_id", ["customer_id", "id"])
        batch_op.create_index("ix_incident_customer_state_id", ["customer_id", "state", "id"])
        batch_op.create_index(op.f("ix_incident_ticket_id"), ["ticket_id"])
        batch_op.create_index(
            "ix_incident_escalation",
            ["next_escalation_at"],
            postgresql_where=sa.text("next_escalation_at IS NOT NULL AND state = 'triggered'"),
            sqlite_where=sa.text("next_escalation_at IS NOT NULL AND state = 'triggered'"),
        )
    op.create_table(
        "incident_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("via", sa.String(length=80), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incident.id"], name=op.f("fk_incident_entry_incident_id_incident"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user.id"], name=op.f("fk_incident_entry_actor_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_incident_entry_event_id_event"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_entry")),
    )
    with op.batch_alter_table("incident_entry") as batch_op:
        batch_op.create_index("ix_incident_entry_incident_id_id", ["incident_id", "id"])
    with op.batch_alter_table("event") as batch_op:
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_event_incident_id_incident"), "incident", ["incident_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_event_incident_id_id", ["incident_id", "id"])

    _group_events()

    with op.batch_alter_table("event") as batch_op:
        batch_op.drop_index(
            "ix_event_escalation",
            postgresql_where=sa.text("next_escalation_at IS NOT NULL AND acknowledged_at IS NULL"),
            sqlite_where=sa.text("next_escalation_at IS NOT NULL AND acknowledged_at IS NULL"),
        )
        batch_op.drop_index(op.f("ix_event_escalates_id"))
        batch_op.drop_constraint(op.f("fk_event_escalates_id_event"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_event_acknowledged_by_id_user"), type_="foreignkey")
        batch_op.drop_column("escalates_id")
        batch_op.drop_column("next_escalation_at")
        batch_op.drop_column("escalation_level")
        batch_op.drop_column("acknowledged_by_id")
        batch_op.drop_column("acknowledged_at")

    _rewrite_filters({"event.created": "incident.triggered", "event.resolved": "incident.resolved"}, add=True)
    _set_sms_template(OLD_SMS, NEW_SMS)
    _job_links(JOB_TEXT, JOB_TEXT + JOB_TEXT_LINK, JOB_HTML, JOB_HTML + JOB_HTML_LINK)


# The seeded job emails link to the job's logs (the job_url its sender gave), where they were not edited.
JOB_TEXT = "{% if event.job_type %}Job type: {{ event.job_type }}\n{% endif %}"
JOB_TEXT_LINK = "{% if job_url %}Job logs: {{ job_url }}\n{% endif %}"
JOB_HTML = '{% if event.job_type %}<p style="margin:0 0 12px">Job type: {{ event.job_type }}</p>{% endif %}'
JOB_HTML_LINK = '{% if job_url %}<p style="margin:0 0 12px"><a href="{{ job_url }}">Job logs</a></p>{% endif %}'


def _job_links(text_old: str, text_new: str, html_old: str, html_new: str) -> None:
    template = sa.table(
        "message_template",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("customer_id", sa.Integer),
        sa.column("body_text", sa.Text),
        sa.column("body_html", sa.Text),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(template).where(
            template.c.name.in_(("email_job_failed", "email_job_partial")), template.c.customer_id.is_(None)
        )
    ).all()
    for row in rows:
        body = row.body_text or ""
        if text_old not in body or (text_old in text_new and text_new in body):
            continue  # edited, or already done
        connection.execute(
            template.update()
            .where(template.c.id == row.id)
            .values(
                body_text=row.body_text.replace(text_old, text_new),
                body_html=(row.body_html or "").replace(html_old, html_new) or None,
            )
        )


def _identity(row) -> str | None:
    data = row.data if isinstance(row.data, dict) else {}
    if row.source == "alertmanager":
        return data.get("fingerprint") or row.dedup_key.split("@", 1)[0]
    if row.source == "pagerduty":
        return data.get("incident_id") or row.dedup_key.split(":", 1)[0]
    return row.dedup_key


def _group_events() -> None:
    """Existing events into incidents, in the order they arrived (batches of ids: bounded memory)."""
    connection = op.get_bind()
    event = sa.table(
        "event",
        *(
            sa.column(name)
            for name in (
                "id",
                "customer_id",
                "source",
                "event_type",
                "dedup_key",
                "status",
                "severity",
                "title",
                "body",
                "labels",
                "data",
                "ticket_id",
                "acknowledged_at",
                "acknowledged_by_id",
                "escalation_level",
                "escalates_id",
                "next_escalation_at",
                "created_at",
                "incident_id",
            )
        ),
    )
    event.c.data.type = sa.JSON()
    event.c.labels.type = sa.JSON()
    incident = sa.table(
        "incident",
        *(
            sa.column(name)
            for name in (
                "id",
                "customer_id",
                "source",
                "key",
                "open_key",
                "state",
                "severity",
                "severity_rank",
                "event_type",
                "title",
                "summary",
                "labels",
                "data",
                "ticket_id",
                "resend_count",
                "triggered_at",
                "last_event_at",
                "acknowledged_at",
                "acknowledged_by_id",
                "acknowledged_via",
                "resolved_at",
                "resolved_via",
                "escalation_level",
                "next_escalation_at",
                "created_at",
                "updated_at",
            )
        ),
    )
    incident.c.data.type = sa.JSON()
    incident.c.labels.type = sa.JSON()
    open_by_key: dict[tuple, int] = {}
    latest_by_key: dict[tuple, int] = {}
    state: dict[int, str] = {}
    of_event: dict[int, int] = {}
    last = 0
    while True:
        rows = connection.execute(sa.select(event).where(event.c.id > last).order_by(event.c.id).limit(2000)).all()
        if not rows:
            break
        last = rows[-1].id
        links = []
        for row in rows:
            incident_id = None
            if row.source in SENDERS and row.event_type in INCIDENT_TYPES:
                key = (row.source, row.customer_id or 0, (_identity(row) or "")[:255])
                incident_id = open_by_key.get(key)
                if row.status == "firing" and incident_id is None:
                    incident_id = connection.execute(
                        incident.insert()
                        .values(
                            customer_id=row.customer_id,
                            source=row.source,
                            key=key[2],
                            open_key=f"{key[0]}:{key[1]}:{key[2]}"[:320],
                            state="triggered",
                            severity=row.severity,
                            severity_rank=SEVERITY_RANK.get(row.severity, 0),
                            event_type=row.event_type,
                            title=row.title,
                            summary=row.body or "",
                            labels=row.labels or {},
                            data=row.data or {},
                            ticket_id=row.ticket_id,
                            resend_count=0,
                            triggered_at=row.created_at,
                            last_event_at=row.created_at,
                            escalation_level=row.escalation_level or 0,
                            next_escalation_at=row.next_escalation_at,
                            created_at=row.created_at,
                            updated_at=row.created_at,
                        )
                        .returning(incident.c.id)
                    ).scalar_one()
                    open_by_key[key] = latest_by_key[key] = incident_id
                    state[incident_id] = "triggered"
                elif row.status == "firing":
                    connection.execute(
                        incident.update()
                        .where(incident.c.id == incident_id)
                        .values(resend_count=incident.c.resend_count + 1, last_event_at=row.created_at)
                    )
                elif row.status == "resolved" and incident_id is not None:
                    connection.execute(
                        incident.update()
                        .where(incident.c.id == incident_id)
                        .values(
                            state="resolved",
                            open_key=None,
                            resolved_at=row.created_at,
                            resolved_via=row.source,
                            next_escalation_at=None,
                            updated_at=row.created_at,
                        )
                    )
                    state[incident_id] = "resolved"
                    del open_by_key[key]
                elif row.status == "acknowledged" and incident_id is not None and state[incident_id] == "triggered":
                    _acknowledge(connection, incident, incident_id, row.created_at, None, row.source)
                    state[incident_id] = "acknowledged"
                incident_id = incident_id or latest_by_key.get(key)
                if incident_id is not None and row.acknowledged_at and state.get(incident_id) == "triggered":
                    _acknowledge(connection, incident, incident_id, row.acknowledged_at, row.acknowledged_by_id, "web")
                    state[incident_id] = "acknowledged"
            elif row.escalates_id is not None:
                incident_id = of_event.get(row.escalates_id)
            elif row.source == "ack" and row.dedup_key.startswith("event-"):
                number = row.dedup_key.removeprefix("event-")
                incident_id = of_event.get(int(number)) if number.isdigit() else None
            if incident_id is not None:
                of_event[row.id] = incident_id
                links.append({"row_id": row.id, "incident": incident_id})
        if links:
            connection.execute(
                event.update().where(event.c.id == sa.bindparam("row_id")).values(incident_id=sa.bindparam("incident")),
                links,
            )


def _acknowledge(connection, incident, incident_id, at, by_id, via) -> None:
    connection.execute(
        incident.update()
        .where(incident.c.id == incident_id)
        .values(
            state="acknowledged",
            acknowledged_at=at,
            acknowledged_by_id=by_id,
            acknowledged_via=via,
            next_escalation_at=None,
        )
    )


def _rewrite_filters(mapping: dict[str, str], *, add: bool) -> None:
    endpoint = sa.table("webhook_endpoint", sa.column("id", sa.Integer), sa.column("event_types", sa.JSON))
    connection = op.get_bind()
    for row_id, names in connection.execute(sa.select(endpoint.c.id, endpoint.c.event_types)).all():
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            continue
        renamed = set(names) | {mapping[n] for n in names if n in mapping} if add else set(names) - set(mapping)
        if sorted(renamed) != names:
            connection.execute(endpoint.update().where(endpoint.c.id == row_id).values(event_types=sorted(renamed)))


def _set_sms_template(old: str, new: str) -> None:
    """The seeded alert SMS, unless someone edited it (then theirs is kept)."""
    template = sa.table(
        "message_template",
        sa.column("name", sa.String),
        sa.column("customer_id", sa.Integer),
        sa.column("body_text", sa.Text),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    if op.get_context().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    op.get_bind().execute(
        template.update()
        .where(template.c.name == "system_alert", template.c.customer_id.is_(None), template.c.body_text == old)
        .values(body_text=new, updated_at=now)
    )


def downgrade():
    _set_sms_template(NEW_SMS, OLD_SMS)
    _job_links(JOB_TEXT + JOB_TEXT_LINK, JOB_TEXT, JOB_HTML + JOB_HTML_LINK, JOB_HTML)
    _rewrite_filters({"incident.triggered": "", "incident.acknowledged": "", "incident.resolved": ""}, add=False)
    with op.batch_alter_table("event") as batch_op:
        batch_op.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_escalation_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalates_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_event_acknowledged_by_id_user"), "user", ["acknowledged_by_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            op.f("fk_event_escalates_id_event"), "event", ["escalates_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(op.f("ix_event_escalates_id"), ["escalates_id"], unique=False)
        batch_op.create_index(
            "ix_event_escalation",
            ["next_escalation_at"],
            postgresql_where=sa.text("next_escalation_at IS NOT NULL AND acknowledged_at IS NULL"),
            sqlite_where=sa.text("next_escalation_at IS NOT NULL AND acknowledged_at IS NULL"),
        )
    # Acknowledgements go back onto the first event of each acknowledged incident.
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT min(e.id) AS event_id, i.acknowledged_at, i.acknowledged_by_id FROM incident i "
            "JOIN event e ON e.incident_id = i.id WHERE i.acknowledged_at IS NOT NULL "
            "GROUP BY i.id, i.acknowledged_at, i.acknowledged_by_id"
        )
    ).all()
    for row in rows:
        connection.execute(
            sa.text("UPDATE event SET acknowledged_at = :at, acknowledged_by_id = :by WHERE id = :id"),
            {"at": row.acknowledged_at, "by": row.acknowledged_by_id, "id": row.event_id},
        )
    with op.batch_alter_table("event") as batch_op:
        batch_op.drop_index("ix_event_incident_id_id")
        batch_op.drop_constraint(op.f("fk_event_incident_id_incident"), type_="foreignkey")
        batch_op.drop_column("incident_id")
    op.drop_table("incident_entry")
    op.drop_table("incident")
