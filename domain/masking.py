"""How a support agent sees a value: enough to match a person who wrote in, no more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _email(v: str) -> str:
    local, _, domain = v.partition("@")
    host, dot, tld = domain.rpartition(".")
    if not domain:
        return "***"
    # Without a dot the whole domain would pass for a top-level domain: keep its initial only.
    return f"{local[:1]}***@{host[:1]}***.{tld}" if dot else f"{local[:1]}***@{domain[:1]}***"


def _phone(v: str) -> str:
    digits = [c for c in v if c.isdigit()]
    return "*** " + "".join(digits[-2:]) if digits else "***"


def _initial(v: str) -> str:
    return v[:1] + "." if v else v


def _last4(v: str) -> str:
    return "****" + v[-4:] if len(v) > 4 else "****"


MASKS: dict[str, Callable[[str], Any]] = {
    "email": _email,
    "phone": _phone,
    "initial": _initial,
    "last4": _last4,
    "hidden": lambda v: None,
    "city_only": lambda v: (
        None
    ),  # the city itself is shown unmasked; the rest of the address hidden
}


def mask(kind: str, value: Any) -> Any:
    if value is None or kind == "none":
        return value
    if not isinstance(value, str):
        return None
    return MASKS[kind](value)
