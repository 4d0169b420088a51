"""Errors on one base: every exception class of dsar is a `DomainError` child, or is listed with
its reason in `api/errors.py` (the edge's own, and those below the domain)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from api.errors import BELOW_THE_DOMAIN, EDGE_ONLY
from domain.errors import DomainError

PACKAGES = ("api", "schema", "domain", "exporters", "stores", "catalogue")


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        path = importlib.import_module(package).__path__
        for info in pkgutil.walk_packages(path, f"{package}."):
            if info.name.endswith("__main__"):
                continue  # runs a command when imported
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == info.name
                ):
                    found[f"{info.name}.{name}"] = value
    return found


def test_every_exception_is_a_domain_error_or_listed_with_its_reason() -> None:
    classes = _exception_classes()
    unlisted = {
        name
        for name, cls in classes.items()
        if not issubclass(cls, DomainError) and name not in {**EDGE_ONLY, **BELOW_THE_DOMAIN}
    }
    assert unlisted == set()
    # The lists name only classes that exist and are not domain errors.
    listed = {**EDGE_ONLY, **BELOW_THE_DOMAIN}
    assert {n for n in listed if n not in classes or issubclass(classes[n], DomainError)} == set()
