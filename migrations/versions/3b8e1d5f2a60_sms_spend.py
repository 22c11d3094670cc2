"""sms spend: notification.sms_country and sms_cost_micros (set when an SMS is really sent: segments x the
price per segment of its country), customer.sms_budget_micros (an optional monthly SMS budget), and an index
for a customer's month of sends.

SMS already sent (not simulated) are priced with the default price table, so this month's spend and budget
start from what was really sent.

Revision ID: 3b8e1d5f2a60
Revises: 9089338994e6
Create Date: 2026-12-01 21:05:00.000000

"""

import sqlalchemy as sa
from alembic import op

from webapp.pricing import parse_prices, segment_price
from webapp.validation import country_of

# revision identifiers, used by Alembic.
revision = "3b8e1d5f2a60"
down_revision = "9089338994e6"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade():
    op.add_column("notification", sa.Column("sms_country", sa.String(length=8), nullable=True))
    op.add_column("notification", sa.Column("sms_cost_micros", sa.BigInteger(), nullable=True))
    op.add_column("customer", sa.Column("sms_budget_micros", sa.BigInteger(), nullable=True))
    op.create_index("ix_notification_customer_sent", "notification", ["customer_id", "sent_at"])
    _price_what_was_sent()


def _price_what_was_sent():
    notification = sa.table(
        "notification",
        sa.column("id", sa.Integer),
        sa.column("channel", sa.String),
        sa.column("recipient", sa.String),
        sa.column("sms_segments", sa.Integer),
        sa.column("simulated", sa.Boolean),
        sa.column("sent_at", sa.DateTime),
        sa.column("sms_country", sa.String),
        sa.column("sms_cost_micros", sa.BigInteger),
    )
    prices = parse_prices(None)
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(notification.c.id, notification.c.recipient, notification.c.sms_segments)
            .where(
                notification.c.id > last,
                notification.c.channel == "sms",
                notification.c.sent_at.is_not(None),
                notification.c.simulated.is_(False),
            )
            .order_by(notification.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            country = country_of(row.recipient)
            connection.execute(
                notification.update()
                .where(notification.c.id == row.id)
                .values(sms_country=country, sms_cost_micros=(row.sms_segments or 1) * segment_price(prices, country))
            )
        last = rows[-1].id


def downgrade():
    op.drop_index("ix_notification_customer_sent", table_name="notification")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("sms_budget_micros")
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("sms_cost_micros")
        batch.drop_column("sms_country")
