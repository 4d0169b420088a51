"""Which scope each root field needs. Scopes default to deny: a root field named neither in
`FIELD_SCOPES` nor in `OPEN` is refused to everyone (HTTP 403), and tests/test_scopes.py fails
on any root field of the built schema in neither, so a new field cannot ship open by mistake."""

from __future__ import annotations

from collections.abc import Mapping

import strawberry

from domain.principals import SCOPE_CUSTOMER, SCOPE_PARTNER, SCOPE_STAFF, SCOPE_SUPPORT

FIELD_SCOPES: Mapping[str, str] = {
    "me": SCOPE_CUSTOMER,
    "requestExport": SCOPE_CUSTOMER,
    "exports": SCOPE_CUSTOMER,
    "grantPortability": SCOPE_CUSTOMER,
    "revokePortability": SCOPE_CUSTOMER,
    "portabilityGrants": SCOPE_CUSTOMER,
    "portabilityPartners": SCOPE_CUSTOMER,
    "subject": SCOPE_SUPPORT,
    "findSubjects": SCOPE_SUPPORT,
    "unmaskField": SCOPE_SUPPORT,
    "requestExportFor": SCOPE_SUPPORT,
    "portabilityTransfers": SCOPE_PARTNER,
    "startTransfer": SCOPE_PARTNER,
    "requests": SCOPE_STAFF,
    "request": SCOPE_STAFF,
    "extendRequest": SCOPE_STAFF,
    "refuseRequest": SCOPE_STAFF,
    "verifyRequest": SCOPE_STAFF,
    "approveRequest": SCOPE_STAFF,
}
# Any login may ask these: the catalogue is the published policy, `export(id)` answers only the
# export's own recipient (customer or partner), and the meta fields say nothing of anyone.
OPEN = frozenset({"dataCategories", "export", "__typename", "__schema", "__type", "submitRequest"})
# Asked without any token at all: a person without an account asks for their data. The answer
# never says whether the address is known (domain/intake.py).
PUBLIC = frozenset({"submitRequest", "__typename"})


class Unscoped(Exception):
    """A root field that names no scope and is not open: nobody may ask for it."""


def required_scope(field: str, root_fields: frozenset[str]) -> str | None:
    """The scope `field` needs; None when it is open or not a root field at all (validation
    answers those). Raises `Unscoped` for a root field in neither table."""
    if field in OPEN:
        return None
    scope = FIELD_SCOPES.get(field)
    if scope is None and field in root_fields:
        raise Unscoped(field)
    return scope


def root_fields(schema: strawberry.Schema) -> frozenset[str]:
    """The names of the schema's query and mutation fields, as clients spell them."""
    built = schema._schema  # the graphql-core schema Strawberry built
    roots = (built.query_type, built.mutation_type, built.subscription_type)
    return frozenset(name for t in roots if t is not None for name in t.fields)
