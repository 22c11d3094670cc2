"""outgoing webhook filters use the names delivery sends: webhook_endpoint.event_types from the page's old
vocabulary (alert, ticket_created, ...) to event.created, ticket.created, ...

The endpoint page used to offer event types while delivery matched outgoing-webhook names, so a filter set on
the page matched nothing. Each old name becomes the names its events are sent under; names already in the
new vocabulary, and names in neither, are kept (the endpoint page shows the latter as never sent). The
downgrade maps back to the old page's names (event.created and event.resolved both to alert).

Revision ID: 21668592deb4
Revises: d8aca33bf0fe
Create Date: 2026-11-27 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "21668592deb4"
down_revision = "d8aca33bf0fe"
branch_labels = None
depends_on = None

# Frozen here (a revision never follows later changes to webapp.models.kinds).
_EVENT = ("event.created", "event.resolved")
UPGRADE = {
    "alert": _EVENT,
    "job_success": _EVENT,
    "job_failed": _EVENT,
    "job_partial": _EVENT,
    "compliance_violation": _EVENT,
    "scheduled_backup_complete": _EVENT,
    "test": _EVENT,
    "ticket_created": ("ticket.created",),
    "ticket_updated": ("ticket.updated",),
    "sla_warning": ("ticket.sla_warning",),
    "sla_breach": ("ticket.sla_breach",),
    "timeline_updated": ("timeline.updated",),
}
DOWNGRADE = {
    "event.created": ("alert",),
    "event.resolved": ("alert",),
    "ticket.created": ("ticket_created",),
    "ticket.updated": ("ticket_updated",),
    "ticket.sla_warning": ("sla_warning",),
    "ticket.sla_breach": ("sla_breach",),
    "timeline.updated": ("timeline_updated",),
}

endpoint = sa.table("webhook_endpoint", sa.column("id", sa.Integer), sa.column("event_types", sa.JSON))


def _rewrite(mapping: dict[str, tuple[str, ...]]) -> None:
    connection = op.get_bind()
    for row_id, names in connection.execute(sa.select(endpoint.c.id, endpoint.c.event_types)).all():
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            continue  # empty: every event, in either vocabulary (and a value no page wrote is left alone)
        renamed = sorted({new for name in names for new in mapping.get(name, (name,))})
        if renamed != names:
            connection.execute(endpoint.update().where(endpoint.c.id == row_id).values(event_types=renamed))


def upgrade():
    _rewrite(UPGRADE)


def downgrade():
    _rewrite(DOWNGRADE)
