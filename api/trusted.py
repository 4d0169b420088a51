"""Trusted documents: the operations of dsar's own clients, registered by their SHA-256.

The account page's operations (api/account/) are the first-party client's; a client sends one by
its text or by its hash alone (`"documentId": "sha256:<hex>"`, or Apollo's
`extensions.persistedQuery.sha256Hash`). With `DSAR_TRUSTED_DOCUMENTS_ONLY=1`, a customer token
may run these and nothing else (`TRUSTED_DOCUMENT_REQUIRED`), as graphql-armor and Apollo advise
for first-party clients: an arbitrary, costly query cannot be sent with a person's token.
Partners, support agents and privacy staff write their own operations and are not held to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from api.account import _partners, data
from catalogue import Catalogue

PREFIX = "sha256:"


def digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def account_documents(catalogue: Catalogue) -> list[str]:
    """Every operation the account page runs, for this catalogue."""
    return [
        data.overview_document(catalogue),
        *(data.category_document(c) for c in catalogue),
        _partners.PARTNERS,
        _partners.SECTION,
        _partners.GRANT,
        _partners.REVOKE,
    ]


class TrustedDocuments:
    def __init__(self, documents: list[str]) -> None:
        self.by_hash: dict[str, str] = {digest(d): d for d in documents}

    @classmethod
    def of(cls, catalogue: Catalogue) -> TrustedDocuments:
        return cls(account_documents(catalogue))

    def trusted(self, document: str) -> bool:
        return digest(document) in self.by_hash

    def named(self, body: Mapping[str, Any]) -> str | None:
        """The hash a request names its document by (without the `sha256:`), or None."""
        document_id = body.get("documentId")
        if isinstance(document_id, str):
            return document_id.removeprefix(PREFIX).lower()
        persisted = (body.get("extensions") or {}).get("persistedQuery")
        if isinstance(persisted, dict) and isinstance(persisted.get("sha256Hash"), str):
            return str(persisted["sha256Hash"]).lower()
        return None
