"""Opaque page cursors: a keyset position signed with the deployment's secret.

A cursor names only a category and a position (the record's `order` columns, as text): never a
subject. A cursor that was altered, or made for another category, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson

from schema.errors import InvalidCursor
from stores.mapping import Position

_MAX = 400  # a cursor is short; anything longer is not one of ours


def _sign(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:16]


def encode(secret: bytes, category: str, position: Position) -> str:
    payload = orjson.dumps([category, list(position)])
    return base64.urlsafe_b64encode(payload + _sign(secret, payload)).decode().rstrip("=")


def decode(secret: bytes, category: str, cursor: str) -> Position:
    if not cursor or len(cursor) > _MAX:
        raise InvalidCursor
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        raise InvalidCursor from None
    payload, mac = raw[:-16], raw[-16:]
    if len(raw) <= 16 or not hmac.compare_digest(mac, _sign(secret, payload)):
        raise InvalidCursor
    try:
        key, values = orjson.loads(payload)
    except (ValueError, TypeError):
        raise InvalidCursor from None
    if key != category or not isinstance(values, list):
        raise InvalidCursor
    # A record's order column may be NULL (a record without a time): JSON's null.
    if not values or not all(v is None or isinstance(v, str) for v in values):
        raise InvalidCursor
    return tuple(values)
