"""Small factories: subjects whose every text value carries a unique marker."""

from __future__ import annotations

import ipaddress
from typing import Any
from uuid import uuid4

from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import SubjectData, build_subject, insert_subject, subject_id
from tests._tokens import TEST_ISSUER

_TEXT = ("string", "text")


def marked_subject(catalogue: Catalogue, handle: str, marker: str, octet: int) -> SubjectData:
    """`handle`'s demo-like data with `marker` in every text field (withheld ones included)."""
    data = build_subject(handle, full=True, sensitive=True)
    for key, rows in data.rows.items():
        cat = catalogue.category(key)
        for n, row in enumerate(rows):
            for f in cat.fields:
                if f.name not in row or row[f.name] is None:
                    continue
                if f.type in _TEXT and not f.values:
                    row[f.name] = f"{marker}{key}{f.name}{n}"
                elif f.type == "inet":
                    row[f.name] = ipaddress.ip_address(f"10.{octet}.{n}.1")
    data.files = {f"{marker}-photo.png": marker.encode() * 10}
    data.logins.append((TEST_ISSUER, handle))
    return data


async def insert_marked(
    stores: Stores, catalogue: Catalogue, handle: str, marker: str, octet: int
) -> SubjectData:
    data = marked_subject(catalogue, handle, marker, octet)
    await insert_subject(stores, catalogue, data)
    return data


def values(data: SubjectData) -> list[Any]:
    return [v for rows in data.rows.values() for row in rows for v in row.values()]


async def linked_person(
    stores: Stores, catalogue: Catalogue, issuer: str, prefix: str, octet: int
) -> str:
    """A marked person of the caller alone whose login `handle` at `issuer` is linked to them;
    returns the handle (the login's `sub`)."""
    handle = f"{prefix}-{uuid4().hex[:8]}"
    await insert_marked(stores, catalogue, handle, f"{prefix[0].upper()}{uuid4().hex[:8]}", octet)
    await stores.subjects.link(subject_id(handle), issuer, handle)
    return handle
