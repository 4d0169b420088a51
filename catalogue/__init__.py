"""The privacy policy as data: categories of personal data and what the policy says of each.

`load_catalogue()` reads the packaged `policy.toml` (or another file) and checks it whole; the
GraphQL schema, the stores, the exporters and the right-to-know statement all read the result.
"""

from ._load import load_catalogue
from ._model import (
    CATEGORY_KEYS,
    DISCLOSURES,
    FIELD_TYPES,
    MASKS,
    ORIGINS,
    UNKNOWN,
    Catalogue,
    Category,
    Choices,
    Contact,
    Field,
    Jurisdiction,
    ReleaseRule,
    Representative,
    Residence,
    Right,
    Safeguard,
    Statement,
    Term,
    Transfers,
)
from ._reader import CatalogueError
from ._requests import Deadline, Period, RequestRules, load_request_rules

__all__ = [
    "CATEGORY_KEYS",
    "DISCLOSURES",
    "FIELD_TYPES",
    "MASKS",
    "ORIGINS",
    "UNKNOWN",
    "Catalogue",
    "CatalogueError",
    "Category",
    "Choices",
    "Contact",
    "Deadline",
    "Field",
    "Jurisdiction",
    "Period",
    "ReleaseRule",
    "Representative",
    "RequestRules",
    "Residence",
    "Right",
    "Safeguard",
    "Statement",
    "Term",
    "Transfers",
    "load_catalogue",
    "load_request_rules",
]
