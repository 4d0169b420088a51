"""DPoP (RFC 9449): the proof that the caller holds the key a sender-constrained access token is
bound to (`cnf.jkt`). Checked as section 4.3 lists, in that order; a failure is an
`InvalidDPoPProof` with a fixed reason code, never a part of the proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

# Asymmetric only (section 4.3 step 5: "not none" and not a MAC); RSA keys of the RS* and PS*
# families, EC of the ES*, and EdDSA.
DPOP_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA", "Ed25519")
MAX_PROOF_LENGTH = 8192
# How far a proof's `iat` may be from our clock, either way (step 11), and how long its `jti` is
# remembered: past that its `iat` refuses it anyway.
IAT_WINDOW = 60
REMEMBER = 3 * IAT_WINDOW
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")

# (scope, value, lifetime) -> True the first time it is seen: the service database's cache.
FirstUse = Callable[[str, str, int], Awaitable[bool]]


class InvalidDPoPProof(Exception):
    """A missing or unacceptable DPoP proof (RFC 9449 section 7.1: `invalid_dpop_proof`).
    `code` is a fixed reason for the challenge and the logs, never proof text."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def ath_of(access_token: str) -> str:
    """Section 4.2: base64url of the SHA-256 of the access token's ASCII octets."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalised_uri(uri: str) -> str:
    """The request URI as section 4.3 step 9 compares it: query and fragment dropped, then RFC
    3986 section 6.2.2 and 6.2.3 normalisation (case of scheme and host, percent-encoding,
    dot segments, the scheme's default port and an empty path)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    try:
        port = parts.port
    except ValueError:
        return ""
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    # Percent-encoding: decode what needs none, then encode alike; "%2F" stays a literal slash.
    segments = [quote(unquote(s), safe="!$&'()*+,;=:@~") for s in parts.path.split("/")]
    return urlunsplit((scheme, netloc, _without_dots("/".join(segments)) or "/", "", ""))


def _without_dots(path: str) -> str:
    """RFC 3986 section 5.2.4, for the absolute paths a request has."""
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    trailing = path.endswith(("/.", "/..")) and out
    return "/" + "/".join(out) + ("/" if trailing else "")


async def check_proof(
    proofs: Sequence[str],
    *,
    method: str,
    uri: str,
    access_token: str,
    jkt: str,
    first_use: FirstUse,
    now: float | None = None,
) -> None:
    """Section 4.3 and 7.1: the request's `DPoP` header values `proofs` prove the holder of the
    key `jkt` sent this very request (`method`, `uri`) with `access_token`, once."""
    if len(proofs) != 1:  # step 1: exactly one DPoP header
        raise InvalidDPoPProof("missing" if not proofs else "several")
    proof = proofs[0].strip()
    header, _ = _shape(proof)  # step 2
    if header.get("typ") != "dpop+jwt":  # step 4
        raise InvalidDPoPProof("type")
    alg = header.get("alg")
    if alg not in DPOP_ALGORITHMS:  # step 5
        raise InvalidDPoPProof("algorithm")
    key = _public_key(header.get("jwk"))  # step 7
    try:
        claims: dict[str, Any] = jwt.decode(proof, key, algorithms=[alg]).claims  # step 6
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidDPoPProof("signature") from error
    for name in ("jti", "htm", "htu", "ath"):  # step 3 (ath: a proof sent with a token)
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise InvalidDPoPProof(f"claim:{name}")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or not math.isfinite(iat):
        raise InvalidDPoPProof("claim:iat")
    if len(claims["jti"]) > 256:
        raise InvalidDPoPProof("claim:jti")
    if claims["htm"] != method:  # step 8
        raise InvalidDPoPProof("htm")
    if normalised_uri(claims["htu"]) != normalised_uri(uri):  # step 9
        raise InvalidDPoPProof("htu")
    current = time.time() if now is None else now
    if abs(current - iat) > IAT_WINDOW:  # step 11
        raise InvalidDPoPProof("iat")
    if not hmac.compare_digest(claims["ath"], ath_of(access_token)):  # step 12
        raise InvalidDPoPProof("ath")
    if not hmac.compare_digest(key.thumbprint(), jkt):  # the key the token is bound to
        raise InvalidDPoPProof("key")
    # Section 11.1: a proof is used once; last, so only well-formed proofs take a place.
    if not await first_use("dpop", f"{jkt}|{claims['jti']}", REMEMBER):
        raise InvalidDPoPProof("replay")


def _shape(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(proof) > MAX_PROOF_LENGTH or not proof.isascii():
        raise InvalidDPoPProof("malformed")
    segments = proof.split(".")
    if len(segments) != 3 or not all(segments):
        raise InvalidDPoPProof("malformed")
    try:
        header, claims = (
            orjson.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) for s in segments[:2]
        )
    except (binascii.Error, ValueError) as error:
        raise InvalidDPoPProof("malformed") from error
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidDPoPProof("malformed")
    return header, claims


def _public_key(jwk: object) -> ECKey | RSAKey | OKPKey:
    """Step 7: the header's `jwk`, a public key of an asymmetric type, never a private one."""
    if not isinstance(jwk, dict) or _PRIVATE & jwk.keys():
        raise InvalidDPoPProof("jwk")
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise InvalidDPoPProof("jwk") from error
    if not isinstance(key, ECKey | RSAKey | OKPKey) or key.is_private:
        raise InvalidDPoPProof("jwk")
    return key
