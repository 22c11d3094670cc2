"""The first-run checklist of a new install: the steps that make OpsRelay page someone, each ticked when done."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func

from webapp.extensions import db
from webapp.models import Channel, Customer, Event, Notification, PhoneNumber, User


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    done: bool


def checklist(user: User) -> list[Step]:
    """Create a customer, add your phone, connect Alertmanager, send a test SMS, invite a teammate (one statement)."""
    row = db.session.execute(
        db.select(
            exists().where(Customer.id.isnot(None)),
            exists().where(PhoneNumber.user_id == user.id),
            exists().where(Event.source == "alertmanager"),
            exists().where(Notification.event_id.is_(None), Notification.channel == Channel.SMS),
            db.select(func.count(User.id)).where(User.id != user.id).scalar_subquery() > 0,
        )
    ).one()
    customer, phone, alertmanager, test_sms, teammate = (bool(value) for value in row)
    return [
        Step("customer", "Create a customer", customer),
        Step("phone", "Add your phone number", phone),
        Step("alertmanager", "Connect Alertmanager", alertmanager),
        Step("test_sms", "Send a test SMS", test_sms),
        Step("teammate", "Invite a teammate", teammate),
    ]
