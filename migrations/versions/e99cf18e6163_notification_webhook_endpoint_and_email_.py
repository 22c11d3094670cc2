"""notification webhook endpoint and email templates

Revision ID: e99cf18e6163
Revises: cb7b0fa329c5
Create Date: 2026-11-26 17:36:08.814125

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e99cf18e6163"
down_revision = "cb7b0fa329c5"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_endpoint_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notification_webhook_endpoint_id"), ["webhook_endpoint_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_notification_event_id_webhook_endpoint_id"), ["event_id", "webhook_endpoint_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_notification_webhook_endpoint_id_webhook_endpoint"),
            "webhook_endpoint",
            ["webhook_endpoint_id"],
            ["id"],
            ondelete="CASCADE",
        )
    _seed_email_templates()


def downgrade():
    op.execute(
        sa.text("DELETE FROM message_template WHERE customer_id IS NULL AND channel = 'email' AND name IN :names")
        .bindparams(sa.bindparam("names", expanding=True))
        .params(names=[name for name, *_ in EMAIL_TEMPLATES])
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_notification_webhook_endpoint_id_webhook_endpoint"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_notification_event_id_webhook_endpoint_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_notification_webhook_endpoint_id"))
        batch_op.drop_column("webhook_endpoint_id")


# (name, event_type, colour, heading, subject) — the fourth seed's themes: success green, failure red,
# partial orange, compliance red, test blue; plus SLA warning/breach and alerts.
GREEN, RED, ORANGE, BLUE, AMBER = "#198754", "#dc3545", "#fd7e14", "#0d6efd", "#ffc107"
EMAIL_TEMPLATES = [
    ("email_alert", "alert", RED, "Alert: {{ alertname }}", "[{{ severity|upper }}] {{ alertname }} is {{ status }}"),
    ("email_job_success", "job_success", GREEN, "Job succeeded", "[OK] {{ event.title }}"),
    ("email_job_failed", "job_failed", RED, "Job failed", "[FAILED] {{ event.title }}"),
    ("email_job_partial", "job_partial", ORANGE, "Job partially succeeded", "[PARTIAL] {{ event.title }}"),
    (
        "email_compliance_violation",
        "compliance_violation",
        RED,
        "Compliance violation",
        "[COMPLIANCE] {{ event.title }}",
    ),
    (
        "email_scheduled_backup_complete",
        "scheduled_backup_complete",
        GREEN,
        "Scheduled backup complete",
        "[BACKUP] {{ event.title }}",
    ),
    ("email_test", "test", BLUE, "Test email", "OpsRelay test email"),
    (
        "email_sla_warning",
        "sla_warning",
        AMBER,
        "SLA warning{% if ticket %}: {{ ticket.key }}{% endif %}",
        "[SLA WARNING] {% if ticket %}{{ ticket.key }} {% endif %}{{ event.title }}",
    ),
    (
        "email_sla_breach",
        "sla_breach",
        RED,
        "SLA breached{% if ticket %}: {{ ticket.key }}{% endif %}",
        "[SLA BREACH] {% if ticket %}{{ ticket.key }} {% endif %}{{ event.title }}",
    ),
]

TEXT = """{heading}

{{{{ event.title }}}}
Severity: {{{{ severity }}}} · Status: {{{{ status }}}} · Source: {{{{ event.source }}}}
{{% if ticket %}}Ticket: {{{{ ticket.key }}}} {{{{ ticket.title }}}}{{% if ticket.due_at %}} (due {{{{ ticket.due_at }}}}){{% endif %}}
{{% endif %}}{{% if event.job_type %}}Job type: {{{{ event.job_type }}}}
{{% endif %}}
{{{{ description }}}}

{{% if link %}}Open in OpsRelay: {{{{ link }}}}{{% endif %}}
"""  # noqa: E501  (one template line)

HTML = """<!doctype html>
<html><body style="margin:0;padding:0;font-family:Arial,Helvetica,sans-serif;background:#f4f4f4">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center" style="padding:24px">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="background:#ffffff;border-radius:6px">
<tr><td style="background:{colour};color:#ffffff;padding:16px 24px;font-size:20px;font-weight:bold">{heading}</td></tr>
<tr><td style="padding:24px;color:#212529;font-size:14px;line-height:1.5">
<p style="font-size:16px;font-weight:bold;margin:0 0 12px">{{{{ event.title }}}}</p>
<p style="margin:0 0 12px">Severity: <strong>{{{{ severity }}}}</strong> · Status: <strong>{{{{ status }}}}</strong>
 · Source: {{{{ event.source }}}}</p>
{{% if ticket %}}<p style="margin:0 0 12px">Ticket: <strong>{{{{ ticket.key }}}}</strong> {{{{ ticket.title }}}}
{{% if ticket.due_at %}}(due {{{{ ticket.due_at }}}}){{% endif %}}</p>{{% endif %}}
{{% if event.job_type %}}<p style="margin:0 0 12px">Job type: {{{{ event.job_type }}}}</p>{{% endif %}}
<p style="margin:0 0 12px;white-space:pre-line">{{{{ description }}}}</p>
{{% if link %}}<p style="margin:24px 0 0"><a href="{{{{ link }}}}" style="background:{colour};color:#ffffff;
padding:10px 16px;border-radius:4px;text-decoration:none">Open in OpsRelay</a></p>{{% endif %}}
</td></tr>
<tr><td style="padding:12px 24px;color:#6c757d;font-size:12px">Sent by OpsRelay.</td></tr>
</table></td></tr></table>
</body></html>
"""


def _seed_email_templates():
    template = sa.table(
        "message_template",
        sa.column("name", sa.String),
        sa.column("event_type", sa.String),
        sa.column("channel", sa.String),
        sa.column("subject", sa.String),
        sa.column("body_text", sa.Text),
        sa.column("body_html", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    if op.get_context().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # the app stores UTC without an offset on SQLite
    op.bulk_insert(
        template,
        [
            {
                "name": name,
                "event_type": event_type,
                "channel": "email",
                "subject": subject,
                "body_text": TEXT.format(heading=heading),
                "body_html": HTML.format(heading=heading, colour=colour),
                "created_at": now,
                "updated_at": now,
            }
            for name, event_type, colour, heading, subject in EMAIL_TEMPLATES
        ],
    )
