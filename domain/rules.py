"""The limits and thresholds the rules apply: a small value built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from catalogue import RequestRules, load_request_rules


@dataclass(frozen=True, slots=True)
class Rules:
    # Exports, downloads, grants and unmasking need a recent, strong login (RFC 9470).
    step_up_acr_values: tuple[str, ...] = ("urn:dsar:acr:strong",)
    step_up_max_age: int = 15 * 60
    export_link_ttl: int = 7 * 24 * 3600
    # Whole bundles one link serves in its lifetime: a client that hung up on the last bytes
    # could not have been told apart from one that received them, so a retry is allowed.
    downloads_per_link: int = 3
    exports_per_day: int = 5
    # Portability transfers a partner may start per minute, and per grant per day.
    partner_transfers_per_minute: int = 30
    grant_transfers_per_day: int = 10
    # Different people one support agent may look at in an hour.
    support_subjects_per_hour: int = 30
    # Keys the pairwise subject references given to partners.
    secret_key: bytes = field(default=b"", repr=False)
    # The deadlines of requests per jurisdiction (catalogue/requests.toml).
    requests: RequestRules = field(default_factory=load_request_rules, repr=False)
