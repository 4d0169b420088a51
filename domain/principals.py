"""Who is calling: exactly one principal per request, built only from a validated token.

Identity is always the pair (issuer, sub); nothing below the HTTP layer sees a token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from uuid import UUID

# Scopes are declared once, here, and checked per operation.
SCOPE_CUSTOMER = "dsar:self"
SCOPE_PARTNER = "portability:pull"
SCOPE_SUPPORT = "support:read"
SCOPE_STAFF = "privacy:manage"


@dataclass(frozen=True, slots=True)
class Authentication:
    """How strongly the person behind a token proved who they are (RFC 9470)."""

    acr: str | None = None
    auth_time: int | None = None

    def age(self, now: float | None = None) -> float | None:
        if self.auth_time is None:
            return None
        return (time.time() if now is None else now) - self.auth_time


@dataclass(frozen=True, slots=True)
class Customer:
    """A data subject acting for themself; `subject_id` is None for a login linked to no data."""

    issuer: str
    sub: str
    subject_id: UUID | None
    scopes: frozenset[str] = frozenset()
    authentication: Authentication = field(default_factory=Authentication)
    token_id: str = ""
    # The subject's anchor value, read with the login in the same statement where the API
    # authenticated the request (api/security.py): its person is found without asking again.
    # Never shown (repr) nor compared.
    anchor: str | None = field(default=None, repr=False, compare=False)

    kind = "customer"


@dataclass(frozen=True, slots=True)
class Partner:
    """A partner controller, known by its OAuth client id; its grants come from the database."""

    issuer: str
    client_id: str
    scopes: frozenset[str] = frozenset()
    token_id: str = ""

    kind = "partner"


@dataclass(frozen=True, slots=True)
class SupportAgent:
    """A support agent of the company's workforce."""

    issuer: str
    sub: str
    scopes: frozenset[str] = frozenset()
    authentication: Authentication = field(default_factory=Authentication)
    token_id: str = ""

    kind = "support"


@dataclass(frozen=True, slots=True)
class PrivacyStaff:
    """A member of the company's privacy team: works the queue of requests."""

    issuer: str
    sub: str
    scopes: frozenset[str] = frozenset()
    authentication: Authentication = field(default_factory=Authentication)
    token_id: str = ""

    kind = "staff"


Principal = Customer | Partner | SupportAgent | PrivacyStaff


@dataclass(frozen=True, slots=True)
class Operator:
    """Someone running the `dsar` command line on the service's machine: the operating system's
    user name is what is recorded of them. Never built from a token."""

    user: str

    kind = "operator"


@dataclass(frozen=True, slots=True)
class Service:
    """dsar itself, closing what a finished download or a deadline decided."""

    kind = "service"


Actor = Principal | Operator | Service
"""Whoever an audit row and a request record as acting: a principal, an operator or dsar."""
