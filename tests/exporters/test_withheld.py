"""§7024(d) items never leave in any form; one subject's data never in another's bundle."""

from __future__ import annotations

import re

import pytest

from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import subject_id, user_id
from tests.exporters.conftest import Bundle, make_bundle

SEPARATORS = re.compile(r"[\s\-./]")


async def seeded_secrets(stores: Stores, handle: str) -> dict[tuple[str, str], list[str]]:
    """The §7024(d) values seeded for a subject, read straight from the stores."""
    uid = user_id(handle)
    app = stores.postgres("identifiers").pool
    billing = stores.postgres("payment").pool
    out: dict[tuple[str, str], list[str]] = {}
    for r in await app.fetch(
        "SELECT doc_type, doc_number FROM identity_documents WHERE user_id = $1", uid
    ):
        out.setdefault(("sensitive", r["doc_type"]), []).append(r["doc_number"])
    ident = await app.fetchrow(
        "SELECT password_hash, security_question, security_answer_hash FROM users WHERE id = $1",
        uid,
    )
    for name, value in ident.items():
        out[("identifiers", name)] = [value]
    for r in await billing.fetch(
        "SELECT account_number, routing_number FROM bank_accounts WHERE customer = $1",
        f"cus_{uid:08d}",
    ):
        for name, value in r.items():
            out.setdefault(("payment", name), []).append(value)
    return out


def forms(value: str) -> set[str]:
    """The value as stored, without separators, and regrouped with other separators."""
    bare = SEPARATORS.sub("", value)
    out = {value, bare}
    if bare.isdigit() and len(bare) == 9:  # an SSN, however it is written
        out |= {f"{bare[:3]}{s}{bare[3:5]}{s}{bare[5:]}" for s in ("-", " ", ".", "")}
    return {f for f in out if len(f) >= 6}


@pytest.mark.parametrize("handle", ["alice", "carol"])
@pytest.mark.parametrize(
    ("fmt", "purpose"), [("json", "access"), ("csv", "access"), ("csv", "portability")]
)
async def test_withheld_values_appear_nowhere_and_are_listed(
    handle: str, fmt: str, purpose: str, stores: Stores, catalogue: Catalogue
) -> None:
    secrets = await seeded_secrets(stores, handle)
    assert len(secrets) == 3 + 3 + 2  # ssn, licence, passport; hashes and question; bank numbers
    b = await make_bundle(stores, catalogue, subject_id(handle), fmt, purpose)
    for (category, item), values in secrets.items():
        for value in values:
            for form in forms(value):
                needle = form.encode()
                assert needle not in b.raw, (category, item)
                for name, body in b.files.items():
                    assert needle not in body, (category, item, name)
                    assert needle.lower() not in body.lower(), (category, item, name)
    withheld = b.manifest["withheld"]
    assert all("7024(d)" in w["rule"] and w["disclosed"] is False for w in withheld)
    assert all(
        set(w)
        == {"category", "field", "description", "where", "records", "rule", "reason", "disclosed"}
        and w["reason"] is None  # no release rule applies to a copy made without the facts
        for w in withheld
    )
    listed = {(w["category"], w["where"].get("kind", w["field"])) for w in withheld}
    assert set(secrets) == listed
    assert b.manifest["withholding_rule"]["title"] == catalogue.withholding.title


async def test_a_subject_without_withheld_items_lists_none(
    stores: Stores, catalogue: Catalogue
) -> None:
    b = await make_bundle(stores, catalogue, subject_id("dave"), "json")
    # dave has a password hash (every account has one) and nothing else of the kind
    assert {(w["category"], w["field"]) for w in b.manifest["withheld"]} == {
        ("identifiers", "password_hash")
    }


async def markers(stores: Stores, handle: str) -> list[str]:
    sid, uid = subject_id(handle), user_id(handle)
    app = stores.postgres("profile").pool
    p = await app.fetchrow(
        "SELECT given_name || ' ' || family_name AS name, email, phone, username, street "
        "FROM users JOIN addresses ON addresses.user_id = users.id WHERE users.id = $1",
        uid,
    )
    devices = await stores.postgres("device").pool.fetch(
        "SELECT d.anonymous_id, d.device_id, host(d.ip) AS ip FROM devices d "
        "JOIN identifies i USING (anonymous_id) WHERE i.user_id = $1",
        uid,
    )
    return [*p.values(), str(sid), *(v for d in devices for v in d.values())]


@pytest.mark.parametrize("fmt", ["json", "csv"])
async def test_only_the_subjects_own_data(
    fmt: str, alice_json: Bundle, alice_csv: Bundle, stores: Stores
) -> None:
    b = {"json": alice_json, "csv": alice_csv}[fmt]
    own = await markers(stores, "alice")
    text = b"\n".join(b.files.values())
    assert all(m.encode() in text for m in own if m), "alice's own markers are in her bundle"
    for other in ("bob", "carol", "dave"):
        for m in await markers(stores, other):
            assert m.encode() not in text, (other, m)
            assert m.encode() not in b.raw, (other, m)
