"""The tenant boundary: may this principal (a signed-in user, or an API key) see or change this row, and which
rows of a query may it see. Pages, the JSON API, webhook follow-ups and jobs all ask here, and only here.

The rules (a Customer is the tenant; DESIGN.md):

- **Admins** (the admin role; an API key with the admin scope and no customer) see and change every row.
- **Operators and viewers** see the rows of their customers; an API key sees the rows of its customer. Only
  operators (the write scope) change them; a viewer (read scope) is refused with 403.
- **A row without a customer** (customer_id NULL: an internal alert and its notifications, a global endpoint,
  webhook source or API key) belongs to the operations team as a whole: only a principal that sees every
  customer sees it, and only an admin changes it. For everyone else it does not exist.
- **Shared rows** (`shared=True`) are the two customer-less things everyone reads. A default that every
  customer inherits until it has its own (the global message templates): whoever sees that kind of row sees
  the default; only an admin changes it (403 for the others, who may make their customer's own copy). And
  the headline of an internal alert that is firing (the dashboard's list): the whole team must know that
  something is on fire; opening the alert stays for those who see every customer and the people it paged.
- **Another tenant's row is a 404**, never a 403: its existence is not the caller's business. A 403 says
  "you may see this, but your role may not change it".
- **A person's own rows** (their phone numbers, their notification preferences, the notifications addressed to
  them) are theirs to see and change, whatever their role. Another person's are seen by whoever sees that
  person (a user is seen through the customers they belong to; one of no customer only by those who see
  every customer) and changed only by an admin who sees every customer that person's rows reach (an
  admin's reach every customer).
  An API key limited to a customer acts for that customer, not as its owner: its owner's rows are not its own.
- **Rows that hang off another row** (a ticket's timeline, an endpoint's deliveries, an event's notifications)
  are seen through it: check the parent, then read them.
- **An API key never has more power than its owner**: its customers are at most the owner's customers, and its
  scope at most the owner's role; a key whose owner is deactivated stops working (webapp.api.access).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, request
from flask_login import current_user

from webapp.extensions import db
from webapp.inputs import is_id
from webapp.models import ApiKey, Customer, Role, User, user_customer

SCOPES = ("read", "write", "admin")  # an API key's scopes, weakest first
SCOPE_ROLE = {"read": Role.VIEWER, "write": Role.OPERATOR, "admin": Role.ADMIN}
ROLE_SCOPE = {role: scope for scope, role in SCOPE_ROLE.items()}


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (signed in, by token, or a key's owner), the key if any, what it may do (a role),
    and which customers' rows it sees (None: every customer, and the rows of none)."""

    user: User | None
    api_key: ApiKey | None
    role: Role
    customer_ids: frozenset[int] | None

    @classmethod
    def of_user(cls, user: User) -> Principal:
        customers = None if user.role == Role.ADMIN else frozenset(c.id for c in user.customers)
        return cls(user=user, api_key=None, role=user.role, customer_ids=customers)

    @classmethod
    def of_key(cls, api_key: ApiKey, owner: User | None) -> Principal:
        """A key's powers: its strongest scope and its customer, each capped by its owner's (if it has one)."""
        granted = [SCOPE_ROLE[s] for s in (api_key.scopes or []) if s in SCOPE_ROLE] or [Role.VIEWER]
        role = max(granted, key=lambda r: r.rank)
        customers = None if api_key.customer_id is None else frozenset({api_key.customer_id})
        if owner is not None:
            if owner.role.rank < role.rank:
                role = owner.role
            if owner.role != Role.ADMIN:
                mine = frozenset(c.id for c in owner.customers)
                customers = mine if customers is None else customers & mine
        return cls(user=owner, api_key=api_key, role=role, customer_ids=customers)

    # --- what it may do ----------------------------------------------------------------------

    @property
    def sees_all(self) -> bool:
        return self.customer_ids is None

    @property
    def scope(self) -> str:
        """The role as an API scope: read, write or admin."""
        return ROLE_SCOPE[self.role]

    def allows(self, role: Role | str) -> bool:
        """At least this role (or API scope)."""
        wanted = role if isinstance(role, Role) else SCOPE_ROLE[role]
        return self.role.rank >= wanted.rank

    @property
    def own_user_id(self) -> int | None:
        """The person this principal is: the signed-in user, a token's user, the owner of a key of no customer;
        None for a key limited to a customer (it acts for that customer) or a key without owner."""
        if self.user is None or (self.api_key is not None and self.api_key.customer_id is not None):
            return None
        return self.user.id

    def is_self(self, user_id: int | None) -> bool:
        return user_id is not None and user_id == self.own_user_id

    def require(self, role: Role | str) -> None:
        """403 unless this principal has at least `role` (or API scope)."""
        if not self.allows(role):
            wanted = role if isinstance(role, Role) else SCOPE_ROLE[role]
            if wanted == Role.OPERATOR:
                abort(403, description=f"{self.label} can look but not change anything.")
            abort(403, description=f"This needs the {wanted.value} role; {self.label} has {self.role.value}.")

    def can_see(self, customer_id: int | None, *, shared: bool = False, owner_id: int | None = None) -> bool:
        """Does it see a row of `customer_id`? `shared`: a customer-less row is a shared default; `owner_id`: the
        person the row belongs to or is addressed to (their own rows are theirs)."""
        if self.customer_ids is None or self.is_self(owner_id):
            return True
        if customer_id is None:
            return shared
        return customer_id in self.customer_ids

    def can_change(self, customer_id: int | None, *, shared: bool = False) -> bool:
        if not self.can_see(customer_id, shared=shared) or not self.allows(Role.OPERATOR):
            return False
        return customer_id is not None or self.allows(Role.ADMIN)

    def check_see(self, customer_id: int | None, *, shared: bool = False, owner_id: int | None = None) -> None:
        """404 unless this principal sees rows of `customer_id`."""
        if not self.can_see(customer_id, shared=shared, owner_id=owner_id):
            abort(404, description="No such object here.")

    def check_change(self, customer_id: int | None, *, shared: bool = False) -> None:
        """404 for a row it does not see; 403 for one it sees but its role may not change."""
        self.check_see(customer_id, shared=shared)
        self.require(Role.OPERATOR)
        if customer_id is None and not self.allows(Role.ADMIN):
            abort(403, description="Only an admin can change what applies to every customer.")

    # --- queries -----------------------------------------------------------------------------

    def scoped(self, query, customer_column, *, shared: bool = False, owner_column=None, also=None):
        """`query` limited to rows whose `customer_column` this principal sees (rows of no customer included
        only for a principal that sees every customer, or when `shared` defaults); with `owner_column`, also
        the rows of (or addressed to) the principal's own person; with `also`, the rows that condition names
        as the person's own in some other way (an event that paged them)."""
        if self.customer_ids is None:
            return query
        visible = customer_column.in_(self.customer_ids)
        if shared:
            visible = visible | customer_column.is_(None)
        if owner_column is not None and self.own_user_id is not None:
            visible = visible | (owner_column == self.own_user_id)
        if also is not None:
            visible = visible | also
        return query.where(visible)

    def scoped_users(self, query, user_column):
        """`query` limited to rows whose `user_column` is a user this principal sees (see visible_user_ids)."""
        users = self.visible_user_ids()
        return query if users is None else query.where(user_column.in_(users))

    def visible_customers(self) -> list[Customer]:
        return list(db.session.scalars(self.scoped(db.select(Customer).order_by(Customer.name), Customer.id)))

    def only_customer_id(self) -> int | None:
        """Its one customer, when it sees exactly one: a write that names no customer is for that one."""
        if self.customer_ids is not None and len(self.customer_ids) == 1:
            return next(iter(self.customer_ids))
        return None

    def customer_named(self, customer_id) -> Customer | None:
        """The customer a request names by id, if it exists and this principal sees it (else None: to the
        caller, another tenant's customer and no customer at all are the same answer)."""
        if not is_id(customer_id):
            return None
        customer = db.session.get(Customer, customer_id)
        return customer if customer is not None and self.can_see(customer.id) else None

    def visible_user_ids(self):
        """A subquery of the ids of the users this principal sees (members of its customers, and itself), or
        None for every user."""
        if self.customer_ids is None:
            return None
        members = db.select(user_customer.c.user_id).where(user_customer.c.customer_id.in_(self.customer_ids))
        if self.own_user_id is not None:
            members = members.union(db.select(db.literal(self.own_user_id)))
        return members

    def can_see_user(self, user: User) -> bool:
        if self.customer_ids is None or self.is_self(user.id):
            return True
        return any(c.id in self.customer_ids for c in user.customers)

    def can_change_person(self, user: User) -> bool:
        """May it change `user`'s own rows (phone numbers, preferences): itself, or an admin who sees every
        customer the person belongs to (an admin's, which reach every customer: only one who sees them all)."""
        if self.is_self(user.id):
            return True
        if not self.allows(Role.ADMIN):
            return False
        if self.customer_ids is None:
            return True
        theirs = {c.id for c in user.customers}
        return user.role != Role.ADMIN and bool(theirs) and theirs <= self.customer_ids

    def check_change_person(self, user: User, *, what: str) -> None:
        """404 for a person it does not see; 403 for someone else's `what` it may not change."""
        if not self.can_see_user(user):
            abort(404, description="No such person here.")
        if not self.can_change_person(user):
            abort(403, description=f"Only an admin can change another person's {what}.")

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"API key {self.api_key.name!r} ({self.api_key.prefix}…)"
        if self.user is not None:
            return f"{self.user.email} ({self.role})"
        return "anonymous"


_REQUEST_KEY = "opsrelay.principal"


def remember(principal: Principal) -> Principal:
    """Make `principal` the one of this request (webapp.api.access, once it has authenticated the caller).
    Kept with the request, not in `g`: an application context (and its `g`) can outlive one request."""
    request.environ[_REQUEST_KEY] = principal
    return principal


def current() -> Principal:
    """The principal of this request: the API caller (set by webapp.api.access) or the signed-in user."""
    principal = request.environ.get(_REQUEST_KEY)
    if principal is None:
        if not current_user.is_authenticated:
            abort(401)
        principal = remember(Principal.of_user(current_user._get_current_object()))
    return principal
