"""The screen of agents' free-text reasons (domain/freetext.py): what it refuses, and the
everyday words it must let through."""

from __future__ import annotations

import pytest

from domain.freetext import CARD, CREDENTIAL, EMAIL, GOVERNMENT_ID, IBAN, NUMBER, identifying


@pytest.mark.parametrize(
    "reason",
    [
        "Customer asked what we hold about them",
        "Customer called on 2026-12-01 about order 4471",
        "Asked for a copy of all data held since 2019-01-01, 3 files missing",
        "Refund of 1,250.00 EUR to their card did not arrive",
        "Follow-up to SUP-1234 and SUP-1240 from last week",
        "They want to know who received their e-mail address",
        "A very-long-hyphenated-description-of-what-the-customer-wanted-today",
    ],
)
def test_everyday_reasons_pass(reason: str) -> None:
    assert identifying(reason) is None


@pytest.mark.parametrize(
    ("reason", "found"),
    [
        ("SSN 123-45-6789 given on the phone", GOVERNMENT_ID),
        ("SSN 123 45 6789 given on the phone", GOVERNMENT_ID),
        ("card 4111 1111 1111 1111 charged twice", CARD),
        ("card 378282246310005 charged twice", CARD),
        ("IBAN GB82WEST12345698765432 for the refund", IBAN),
        ("IBAN DE89 3704 0044 0532 0130 00 Refund pending", IBAN),
        ("account 12345678901 charged twice", NUMBER),
        ("phone +1 555 123 0167 called", NUMBER),
        ("wrote from Jane.Roe+dsar@Example.co.uk yesterday", EMAIL),
        ("token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln pasted", CREDENTIAL),
        ("Authorization: Bearer abcdefghijklmnopqrstu12345", CREDENTIAL),
        ("their key sk_live_51H8xYzAbCdEfGhIjKlMnOpQrStUv leaked", CREDENTIAL),
    ],
)
def test_identifiers_are_named(reason: str, found: str) -> None:
    assert identifying(reason) == found
