"""What an agent's free-text reason may not hold: it is kept forever in the append-only audit
log, so a government ID, a card or account number, an e-mail address or a credential typed into
it could never be taken out again. `identifying` names the first such thing found; the caller
refuses the text with that name, before anything is written.
"""

from __future__ import annotations

import re

# A JWT (three base64url segments, the first a JSON header: `eyJ`), a bearer credential, or a
# long opaque string of letters and digits such as an API key or a session id.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"\b(?:bearer|token|basic)\s*[:=]?\s+[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE)
_OPAQUE = re.compile(r"(?<![A-Za-z0-9_~+/=.-])[A-Za-z0-9_~+/=.-]{32,}")
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[A-Za-z]{2,}")
# ISO 13616: two letters, two check digits, 11 to 30 letters or digits (spaces every four).
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")
# A US social security number as written: 123-45-6789 or 123 45 6789.
_SSN = re.compile(r"(?<![0-9])[0-9]{3}([- ])[0-9]{2}\1[0-9]{4}(?![0-9])")
# Digits grouped by single spaces, dashes or dots: a card, account, document or phone number.
_NUMBER = re.compile(r"(?<![0-9])[0-9](?:[ .-]?[0-9])+(?![0-9])")
# A date (2026-12-01) has 8 digits; 9 or more is an account or document number, or a phone.
_LONG_NUMBER = 9

CREDENTIAL = "an access token, API key or other credential"
EMAIL = "an e-mail address"
IBAN = "a bank account number (IBAN)"
GOVERNMENT_ID = "a government ID number (such as a social security number)"
CARD = "a payment card number"
NUMBER = "an account, document or phone number"


def identifying(text: str) -> str | None:
    """What `text` holds that identifies a person or opens an account, in words; or None."""
    if _JWT.search(text) or _BEARER.search(text) or any(_opaque(m) for m in _OPAQUE.findall(text)):
        return CREDENTIAL
    if _EMAIL.search(text):
        return EMAIL
    if any(_iban_valid(m.group()) for m in _IBAN.finditer(text)):
        return IBAN
    if _SSN.search(text):
        return GOVERNMENT_ID
    for match in _NUMBER.finditer(text):
        digits = re.sub(r"[^0-9]", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return CARD
        if len(digits) >= _LONG_NUMBER:
            return NUMBER
    return None


def _opaque(candidate: str) -> bool:
    """Letters and digits mixed, as in a key; not a long word or a path of words."""
    return any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate)


def _iban_valid(candidate: str) -> bool:
    """ISO 7064 mod 97-10 (the four first characters moved to the end, letters as 10..35) of
    the candidate or of a shorter start of it: what follows an IBAN may be a capitalised word."""
    iban = candidate.replace(" ", "")
    for end in range(len(iban), 14, -1):
        rearranged = iban[4:end] + iban[:4]
        if int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1:
            return True
    return False


def _luhn(digits: str) -> bool:
    total = 0
    for n, c in enumerate(reversed(digits)):
        d = int(c)
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
