"""Customers (tenants) and their members."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import Customer, Role, User
from webapp.services import audit


class CustomerError(ValueError):
    """A change refused; `field` names the form field the message belongs next to."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def names_of(customer_ids) -> dict[int, str]:
    """Customer id -> name for these ids (None ids skipped), in one statement; no statement for none."""
    ids = {i for i in customer_ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(db.select(Customer.id, Customer.name).where(Customer.id.in_(ids))).all())


def _name_taken(name: str, *, except_id: int | None = None) -> bool:
    query = db.select(Customer.id).where(db.func.lower(Customer.name) == name.lower())
    if except_id is not None:
        query = query.where(Customer.id != except_id)
    return db.session.scalar(query.limit(1)) is not None


def create(*, name: str, timezone: str, by: User, sms_budget_micros: int | None = None) -> Customer:
    name = name.strip()
    if _name_taken(name):
        raise CustomerError(f"A customer named {name!r} already exists.", field="name")
    customer = Customer(name=name, timezone=timezone, is_active=True, sms_budget_micros=sms_budget_micros)
    db.session.add(customer)
    db.session.flush()
    audit.record(actor=by, action="customer.create", target=customer, summary=f"created customer {name}")
    return customer


def update(
    customer: Customer, *, name: str, timezone: str, is_active: bool, sms_budget_micros: int | None, by: User
) -> dict:
    """Change a customer. Its SMS budget is the installation's money: only an admin changes it."""
    name = name.strip()
    if _name_taken(name, except_id=customer.id):
        raise CustomerError(f"A customer named {name!r} already exists.", field="name")
    if sms_budget_micros != customer.sms_budget_micros and by.role != Role.ADMIN:
        raise CustomerError("Only an admin can change the SMS budget.", field="sms_budget")
    changes = {}
    values = {"name": name, "timezone": timezone, "is_active": is_active, "sms_budget_micros": sms_budget_micros}
    for attr, value in values.items():
        old = getattr(customer, attr)
        if old != value:
            changes[attr] = [old, value]
            setattr(customer, attr, value)
    if changes:
        db.session.flush()
        audit.record(
            actor=by, action="customer.update", target=customer, summary=f"edited customer {name}", changes=changes
        )
    return changes


def add_member(customer: Customer, user: User, *, by: User) -> bool:
    if customer in user.customers:
        return False
    user.customers.append(customer)
    db.session.flush()
    audit.record(
        actor=by, action="customer.member_add", target=customer, summary=f"added {user.email} to {customer.name}"
    )
    return True


def remove_member(customer: Customer, user: User, *, by: User) -> bool:
    if customer not in user.customers:
        return False
    user.customers.remove(customer)
    db.session.flush()
    audit.record(
        actor=by,
        action="customer.member_remove",
        target=customer,
        summary=f"removed {user.email} from {customer.name}",
    )
    return True
