"""TokenValidator against hand-made tokens: every forgery in ATTACKS.md "Tokens" is refused."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import time
from typing import Any

import orjson
import pytest
from joserfc.jwk import Key, OKPKey, RSAKey

from api.tokens import MAX_TOKEN_LENGTH, InvalidToken, TokenValidator

from .forge import (
    AUDIENCE,
    ISSUER,
    b64,
    claims,
    new_key,
    segment,
    sign,
    sign_hmac,
    sign_raw,
    trusted,
)

NOW = int(time.time())
KEY = new_key()


def validator(**options: Any) -> TokenValidator:
    return TokenValidator({ISSUER: trusted(KEY)}, AUDIENCE, now=lambda: NOW, **options)


async def rejected(token: str, v: TokenValidator | None = None) -> str:
    with pytest.raises(InvalidToken) as caught:
        await (v or validator()).validate(token)
    # The reason is one of our fixed codes (a word, or a word and the claim it is about),
    # never a piece of the token: none of the values its header and claims carry. (Not a
    # search of the token's text: a short code such as `kid` turns up in a random signature.)
    code = caught.value.code
    assert re.fullmatch(r"[a-z_]+(:[a-z_]+)?", code), code
    assert code not in _carried(token)
    return code


def _carried(token: str) -> set[str]:
    """The values a token's header and claims carry, as text (none where they do not decode)."""
    out: set[str] = set()
    for part in token.split(".")[:2]:
        with contextlib.suppress(ValueError, binascii.Error):
            decoded = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            if isinstance(decoded, dict):
                out |= {str(v) for v in decoded.values()}
    return out


async def test_a_good_token_is_accepted() -> None:
    result = await validator().validate(sign(KEY, claims(iat=NOW, exp=NOW + 300)))
    assert result["sub"] == "alice"
    assert result["iss"] == ISSUER


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt"])
async def test_both_rfc9068_types_are_accepted(typ: str) -> None:
    assert await validator().validate(sign(KEY, claims(iat=NOW, exp=NOW + 60), typ=typ))


async def test_oversized_and_misshapen_tokens() -> None:
    good = sign(KEY, claims(iat=NOW, exp=NOW + 60))
    padded = sign(KEY, claims(iat=NOW, exp=NOW + 60, pad="x" * MAX_TOKEN_LENGTH))
    assert await rejected(padded) == "malformed"
    assert await rejected(good + ".x.y") == "malformed"  # JWE-shaped: five segments
    assert await rejected(".".join(good.split(".")[:2])) == "malformed"
    assert await rejected("not-a-jwt") == "malformed"
    assert await rejected("e30.e30.AAAA") == "algorithm"  # `{}` header


async def test_alg_none_is_refused() -> None:
    body = segment(claims(iat=NOW, exp=NOW + 60))
    for alg in ("none", "None", "NONE"):
        head = segment({"alg": alg, "typ": "at+jwt", "kid": KEY.kid})
        assert await rejected(f"{head}.{body}.") == "malformed"
        assert await rejected(f"{head}.{body}.{b64(b'sig')}") == "algorithm"


async def test_hs256_signed_with_the_issuers_public_key_is_refused() -> None:
    # The classic confusion: the verifier is tricked into using the public key as an HMAC secret.
    head = {"alg": "HS256", "typ": "at+jwt", "kid": KEY.kid}
    for secret in (KEY.as_pem(private=False), segment(KEY.as_dict(private=False)).encode()):
        forged = sign_hmac(secret, head, claims(iat=NOW, exp=NOW + 60))
        assert await rejected(forged) == "algorithm"
        # Even with HS256 wrongly allowed, the validator refuses to be configured so.
        with pytest.raises(ValueError):
            validator(algorithms=("ES256", "HS256"))


async def test_a_key_embedded_in_the_header_is_never_used() -> None:
    attacker = new_key(kid=KEY.kid)
    forged = sign(attacker, claims(iat=NOW, exp=NOW + 60), jwk=attacker.as_dict(private=False))
    assert await rejected(forged) == "forbidden_header"
    # Without the header, the attacker's key under our kid fails the signature check.
    assert await rejected(sign(attacker, claims(iat=NOW, exp=NOW + 60))) == "signature"


@pytest.mark.parametrize(
    "header",
    [
        {"jku": "https://evil.test/jwks.json"},
        {"x5u": "https://evil.test/cert.pem"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"], "exp": 1},
        {"crit": ["b64"], "b64": False},
    ],
)
async def test_key_locating_and_critical_headers_are_refused(header: dict[str, Any]) -> None:
    head = {"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid, **header}
    assert await rejected(sign_raw(KEY, head, claims(iat=NOW))) == "forbidden_header"


async def test_other_key_types_on_the_allowlist_still_need_the_issuers_key() -> None:
    attackers: list[tuple[Key, str]] = [
        (RSAKey.generate_key(2048), "RS256"),
        (RSAKey.generate_key(2048), "PS256"),
        (OKPKey.generate_key("Ed25519"), "EdDSA"),
        (OKPKey.generate_key("Ed25519"), "Ed25519"),
    ]
    for attacker, alg in attackers:
        head = {"alg": alg, "typ": "at+jwt", "kid": KEY.kid}
        forged = sign_raw(attacker, head, claims(iat=NOW, exp=NOW + 60))
        # The key named by kid is an ES256 key: it never verifies an RS256 or EdDSA token.
        assert await rejected(forged) == "algorithm"


async def test_unknown_or_missing_kid() -> None:
    assert await rejected(sign(KEY, claims(iat=NOW, exp=NOW + 60), kid="nope")) == "unknown_key"
    assert await rejected(sign(KEY, claims(iat=NOW, exp=NOW + 60), kid=None)) == "kid"
    head = {"alg": "ES256", "typ": "at+jwt", "kid": 7}
    assert await rejected(sign_raw(KEY, head, claims(iat=NOW))) == "kid"


async def test_issuer_must_be_trusted_and_match_the_key_set() -> None:
    assert await rejected(sign(KEY, claims(iss="https://evil.test", iat=NOW))) == "issuer"
    assert await rejected(sign(KEY, claims(iss=None, iat=NOW))) == "issuer"
    # A second trusted issuer cannot sign for the first: its kid is not in the first's key set.
    other = new_key()
    both = TokenValidator(
        {ISSUER: trusted(KEY), "https://other.test": trusted(other, "https://other.test")},
        AUDIENCE,
        now=lambda: NOW,
    )
    assert await rejected(sign(other, claims(iat=NOW)), both) == "unknown_key"
    assert await both.validate(sign(other, claims(iss="https://other.test", iat=NOW)))


async def test_issuer_is_compared_exactly() -> None:
    assert await rejected(sign(KEY, claims(iss=ISSUER + "/", iat=NOW))) == "issuer"
    assert await rejected(sign(KEY, claims(iss=ISSUER.upper(), iat=NOW))) == "issuer"


@pytest.mark.parametrize(
    "aud", ["https://other.test/api", ["https://other.test/api"], [], "", AUDIENCE + "/", 1]
)
async def test_another_audience_is_refused(aud: Any) -> None:
    assert (await rejected(sign(KEY, claims(aud=aud, iat=NOW)))).endswith(":aud")


async def test_audience_list_containing_ours_is_accepted() -> None:
    token = sign(KEY, claims(aud=["https://other.test/api", AUDIENCE], iat=NOW))
    assert await validator().validate(token)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+JWT+x", "id_token", ""])
async def test_typ_other_than_at_jwt_is_refused(typ: str | None) -> None:
    assert await rejected(sign(KEY, claims(iat=NOW), typ=typ)) == "type"


async def test_expiry_leeway_is_sixty_seconds() -> None:
    assert await validator().validate(sign(KEY, claims(iat=NOW - 600, exp=NOW - 59)))
    expired = sign(KEY, claims(iat=NOW - 600, exp=NOW - 61))
    assert await rejected(expired) == "expired_token:exp"


async def test_not_before_and_issued_at_in_the_future() -> None:
    assert await validator().validate(sign(KEY, claims(iat=NOW + 59, nbf=NOW + 59)))
    assert await rejected(sign(KEY, claims(iat=NOW, nbf=NOW + 61))) == "invalid_claim:nbf"
    assert await rejected(sign(KEY, claims(iat=NOW + 61))) == "invalid_claim:iat"


@pytest.mark.parametrize("name", ["client_id", "jti", "sub", "exp", "iat", "aud"])
async def test_required_claims_missing(name: str) -> None:
    payload = claims(iat=NOW)
    del payload[name]
    assert await rejected(sign(KEY, payload)) == f"missing_claim:{name}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("exp", str(NOW + 300)),
        ("exp", True),
        ("exp", [NOW + 300]),
        ("iat", str(NOW)),
        ("nbf", "0"),
        ("sub", ""),
        ("sub", 42),
        ("client_id", ""),
        ("client_id", ["a"]),
        ("jti", ""),
        ("scope", ["dsar:self"]),
        ("acr", 3),
        ("auth_time", "yesterday"),
    ],
    # Ids without the clock's values: the test processes (make test runs two) collect alike.
    ids=lambda v: v if isinstance(v, str) and not v.isdigit() else type(v).__name__,
)
async def test_claims_of_the_wrong_type(name: str, value: Any) -> None:
    code = await rejected(sign(KEY, {**claims(iat=NOW), name: value}))
    assert code.endswith(f":{name}")


async def test_exp_nan_and_infinity_never_mean_forever() -> None:
    head = {"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}
    for raw in (b"NaN", b"Infinity", b"1e999"):
        payload = (
            b'{"iss":"%s","aud":"%s","sub":"a","client_id":"c","jti":"j","iat":%d,"exp":%s}'
            % (
                ISSUER.encode(),
                AUDIENCE.encode(),
                NOW,
                raw,
            )
        )
        # Refused either by the strict JSON peek or by the NumericDate check after verification.
        assert await rejected(sign_raw(KEY, head, payload)) in {"malformed", "invalid_claim:exp"}


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA", "Ed25519"])
async def test_each_allowed_algorithm_verifies_with_the_issuers_key(alg: str) -> None:
    key: Key = (
        RSAKey.generate_key(2048, auto_kid=True)
        if alg[1] == "S"
        else OKPKey.generate_key("Ed25519", auto_kid=True)
    )
    v = TokenValidator({ISSUER: trusted(key)}, AUDIENCE, now=lambda: NOW)
    head = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
    # No warning escapes (pytest turns warnings into errors), the deprecated EdDSA name included.
    assert (await v.validate(sign_raw(key, head, claims(iat=NOW))))["sub"] == "alice"
    # And a validator that does not allow the algorithm refuses the same token.
    only_es = TokenValidator({ISSUER: trusted(key)}, AUDIENCE, ("ES256",), now=lambda: NOW)
    assert await rejected(sign_raw(key, head, claims(iat=NOW)), only_es) == "algorithm"


def test_key_sets_must_be_filed_under_their_own_issuer() -> None:
    with pytest.raises(ValueError):
        TokenValidator({"https://other.test": trusted(KEY)}, AUDIENCE)
    with pytest.raises(ValueError):
        TokenValidator({}, AUDIENCE)
