"""Tenant scoping for the admin pages: who sees and who changes which customer's objects.

Admins see and change everything; operators change only within their customers; viewers read
only their customers' objects. Another customer's object is a 404 (its existence is not the
reader's business); a change the role does not allow is a 403.
"""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from webapp.extensions import db
from webapp.models import Customer, Role, User, user_customer


def customer_ids() -> frozenset[int] | None:
    """The customers the signed-in user may see; None means every customer (admins)."""
    if current_user.has_role(Role.ADMIN):
        return None
    return frozenset(c.id for c in current_user.customers)


def scoped(query, column):
    """`query` limited to rows whose `column` (a customer id) the user may see."""
    ids = customer_ids()
    if ids is None:
        return query
    return query.where(column.in_(ids))


def visible_customers() -> list[Customer]:
    query = db.select(Customer).order_by(Customer.name)
    return list(db.session.scalars(scoped(query, Customer.id)))


def check_visible(customer_id: int | None) -> None:
    """404 unless the user may see objects of `customer_id` (None: global objects, admins only)."""
    ids = customer_ids()
    if ids is not None and customer_id not in ids:
        abort(404)


def check_can_change(customer_id: int | None) -> None:
    """404 for another customer's object, 403 for a viewer: writes need an operator of that customer."""
    check_visible(customer_id)
    if not current_user.has_role(Role.OPERATOR):
        abort(403, description="Viewers can look but not change anything.")


def can_change() -> bool:
    return current_user.has_role(Role.OPERATOR)


def visible_user_choices(*, staff_only: bool = False, limit: int = 500) -> list[tuple[str, str]]:
    """(id, name) of the users the signed-in user may see: members of their customers (admins: all)."""
    query = db.select(User.id, User.name).order_by(User.name).limit(limit)
    ids = customer_ids()
    if ids is not None:
        members = db.select(user_customer.c.user_id).where(user_customer.c.customer_id.in_(ids))
        query = query.where(User.id.in_(members))
    if staff_only:
        query = query.where(User.role != Role.VIEWER, User.is_active.is_(True))
    return [(str(uid), name) for uid, name in db.session.execute(query)]
