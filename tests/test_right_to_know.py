"""The right-to-know statement: the catalogue, what is held, and the person's own facts (their
jurisdiction, their recorded choices, the transfers they authorised), over the 12 months
before the request."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from domain import audit
from domain.audit import Action
from domain.disclosures import person_facts, year_before
from domain.principals import Partner
from exporters.facts import CategoryFacts, Disclosure
from stores.registry import Stores
from stores.seed import subject_id
from tests._policy import POLICY

RTK = """{ me { rightToKnow {
  generatedAt periodFrom choices retentionCriteria
  jurisdiction { key source }
  statements { key title description law }
  transferSafeguards { key covers coversYours }
  categories { records disclosedLast12Months soldOrSharedLast12Months
    disclosures { recipient { key } disclosed note partners }
    shared { recipient { key } disclosed note }
    category { key title sources { key } purposes { key } recipients { key }
               sharedWith { key } legalBases { key } retention { key } } }
  transfers safeguards { title } rights { key gdpr how } withholdingRule
  controller { name email emailIsDemo representatives }
} withheld { category field kind rule released reason } } }"""


async def rtk(client: httpx.AsyncClient, issuer: DevIssuer, who: str) -> dict:  # type: ignore[type-arg]
    r = await client.post(
        "/graphql",
        json={"query": RTK},
        headers={"Authorization": f"Bearer {issuer.mint('customer', who)}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]["me"]  # type: ignore[no-any-return]


async def test_statement_matches_the_catalogue(
    client: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    me = await rtk(client, issuer, "alice")
    statement = me["rightToKnow"]
    assert [c["category"]["key"] for c in statement["categories"]] == list(catalogue.keys)
    for held in statement["categories"]:
        cat = catalogue.category(held["category"]["key"])
        got = held["category"]
        assert [t["key"] for t in got["sources"]] == [t.key for t in cat.sources]
        assert [t["key"] for t in got["purposes"]] == [t.key for t in cat.purposes]
        assert [t["key"] for t in got["recipients"]] == [t.key for t in cat.recipients]
        assert [t["key"] for t in got["sharedWith"]] == [t.key for t in cat.shared_with]
        assert [t["key"] for t in got["legalBases"]] == [t.key for t in cat.legal_bases]
        assert got["retention"]["key"] == cat.retention.key
        assert held["records"] > 0
        # alice opted out of sale and sharing before the 12 months began: nothing shared.
        assert held["soldOrSharedLast12Months"] is False
    assert {r["key"] for r in statement["rights"]} >= {
        "access",
        "portability",
        "rectification",
        "erasure",
        "complaint",
    }
    assert any("Data Privacy Framework" in s["title"] for s in statement["safeguards"])
    assert "United States" in statement["transfers"]
    assert len(statement["controller"]["representatives"]) == 2


async def test_categories_not_held_are_left_out(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    # dave has only a profile, identifiers and preferences.
    me = await rtk(client, issuer, "dave")
    keys = {c["category"]["key"] for c in me["rightToKnow"]["categories"]}
    assert keys == {"profile", "identifiers", "preferences"}


async def test_withheld_items_are_named_never_shown(
    client: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    carol = await rtk(client, issuer, "carol")
    items = {(w["category"], w["field"], w["kind"]) for w in carol["withheld"]}
    assert ("sensitive", "value", "ssn") in items
    assert ("payment", "account_number", None) in items
    assert ("identifiers", "security_answer_hash", None) in items
    assert all("7024(d)" in w["rule"] for w in carol["withheld"])
    assert not any(w["released"] for w in carol["withheld"])
    assert {w["reason"] for w in carol["withheld"]} == {catalogue.withholding.description}
    assert carol["rightToKnow"]["withholdingRule"] == catalogue.withholding.description
    bob = await rtk(client, issuer, "bob")
    assert not any(w["category"] == "sensitive" for w in bob["withheld"])


async def test_withheld_items_of_a_gdpr_person_name_her_own_copy(
    client: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    """alice lives in Berlin: the values she gave are part of her own copy (GDPR Art. 15(3)),
    so nothing may tell her they are never disclosed under the CCPA's rule; the hashes stay
    withheld with their exception."""
    alice = await rtk(client, issuer, "alice")
    assert alice["rightToKnow"]["jurisdiction"]["key"] == "GDPR"
    rule = catalogue.release_rule("GDPR")
    assert rule is not None
    items = {(w["category"], w["field"]): w for w in alice["withheld"]}
    assert items, "alice holds withheld values in the demo"
    for (category, field), w in items.items():
        assert w["rule"] == rule.title and "7024" not in w["rule"]
        why = rule.exception(category, field)
        assert w["released"] is (why is None)
        assert w["reason"] == (rule.description if why is None else why)
    assert any(w["released"] for w in items.values())
    assert not items[("identifiers", "password_hash")]["released"]
    assert alice["rightToKnow"]["withholdingRule"] == rule.description


def norm(text: str) -> str:
    plain = str.maketrans({"\u2019": "'", "\u201c": '"', "\u201d": '"'})
    return " ".join(text.translate(plain).split()).casefold()


async def test_alice_opted_out_so_nothing_was_sold_or_shared(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    statement = (await rtk(client, issuer, "alice"))["rightToKnow"]
    assert "Do Not Sell or Share My Personal Information" in statement["choices"]
    for held in statement["categories"]:
        assert held["soldOrSharedLast12Months"] is False
        for shared in held["shared"]:
            assert shared["disclosed"] is False
            assert "turned the Retargeting/Advertising cookies off" in shared["note"]
    # Her analytics data still went to the analytics partners her choices allow.
    web = next(h for h in statement["categories"] if h["category"]["key"] == "web_analytics")
    by = {d["recipient"]["key"]: d for d in web["disclosures"]}
    assert by["service_providers"]["disclosed"] is True
    assert by["external_parties"]["disclosed"] is None  # no record either way, said so
    assert "no record" in by["external_parties"]["note"]


async def test_bob_allows_advertising_so_his_statement_says_shared(
    client: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    statement = (await rtk(client, issuer, "bob"))["rightToKnow"]
    for held in statement["categories"]:
        cat = catalogue.category(held["category"]["key"])
        assert held["soldOrSharedLast12Months"] == bool(cat.shared_with), cat.key
        assert held["disclosedLast12Months"] is True  # hosting holds every category


async def test_every_statement_of_the_policy_reaches_the_person(
    client: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    policy = norm(POLICY.read_text(encoding="utf-8"))
    alice = (await rtk(client, issuer, "alice"))["rightToKnow"]
    assert alice["jurisdiction"] == {"key": "GDPR", "source": "stores"}
    said = {s["key"]: s for s in alice["statements"]}
    assert set(said) == {s.key for s in catalogue.statements}
    assert "monetary or other valuable consideration" in said["no_sale"]["description"]
    assert "Interest-Based Ads" in said["automated_decisions"]["description"]
    assert "Federal Trade Commission" in said["dpf_liability"]["description"]
    assert "binding arbitration" in said["dpf_arbitration"]["description"]
    assert "minors under 18" in said["minors"]["description"]
    assert "7027(l)" in said["sensitive_purposes"]["description"]
    assert norm(alice["retentionCriteria"]).split(". ")[0] in policy
    # alice lives in Berlin: the EU-U.S. DPF covers her data, no other safeguard does.
    covering = [s["key"] for s in alice["transferSafeguards"] if s["coversYours"]]
    assert covering == ["eu_us_dpf"]
    # Rights that work by request name the contact address.
    email = alice["controller"]["email"]
    assert email and alice["controller"]["emailIsDemo"] is True
    how = {r["key"]: r["how"] for r in alice["rights"]}
    assert how["access"] == f"By request: write to {email}."
    assert how["complaint"] is None
    # carol lives in California: the DPF statements are not hers to hear.
    carol = (await rtk(client, issuer, "carol"))["rightToKnow"]
    assert carol["jurisdiction"]["key"] == "CCPA"
    assert {s["key"] for s in carol["statements"]} == {
        s.key for s in catalogue.statements if not s.jurisdictions
    }
    assert not any(s["coversYours"] for s in carol["transferSafeguards"])


async def test_the_period_is_the_12_months_before_the_request(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    statement = (await rtk(client, issuer, "bob"))["rightToKnow"]
    made = datetime.fromisoformat(statement["generatedAt"])
    assert datetime.fromisoformat(statement["periodFrom"]) == year_before(made)
    assert year_before(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2027, 2, 28, tzinfo=UTC)


async def test_partner_transfers_come_from_the_audit_log(
    stores: Stores, catalogue: Catalogue, owner_db: asyncpg.Pool
) -> None:
    """A partner download recorded for the person is a disclosure to Business Partners, with
    the partner's name, for a statement made within 12 months of it, and not after."""
    db = stores.subjects.pool
    bob = subject_id("bob")
    client_id = f"rtk-partner-{uuid4().hex[:8]}"
    await db.execute(
        "INSERT INTO partners (client_id, issuer, name, categories) VALUES ($1, 'x', $2, $3)",
        client_id,
        "Acme Advisors",
        ["web_analytics"],
    )
    try:
        async with db.acquire() as conn, conn.transaction():
            await audit.record(
                conn,
                request_id="rtk-test",
                actor=Partner(issuer="x", client_id=client_id),
                subject_id=bob,
                action=Action.TRANSFER_DOWNLOAD,
                outcome="allowed",
                purpose={"export_id": str(uuid4())},
                categories=["web_analytics"],
            )
        now = datetime.now(UTC) + timedelta(seconds=1)
        facts = await person_facts(stores, db, catalogue, bob, now)
        partners = _business_partners(facts.of("web_analytics"))
        assert partners.disclosed is True and "Acme Advisors" in partners.partners
        assert partners.last_at is not None and partners.last_at > now - timedelta(minutes=5)
        assert "Acme Advisors" in partners.note
        # A category the download did not hold was not disclosed by it.
        assert "Acme Advisors" not in _business_partners(facts.of("profile")).partners
        # A statement made 400 days later no longer counts it.
        later = await person_facts(stores, db, catalogue, bob, now + timedelta(days=400))
        assert not _business_partners(later.of("web_analytics")).disclosed
    finally:
        # The service's role may not delete partners (it only disables them): as the owner.
        await owner_db.execute("DELETE FROM partners WHERE client_id = $1", client_id)


def _business_partners(facts: CategoryFacts) -> Disclosure:
    return next(d for d in facts.disclosures if d.recipient.key == "business_partners")


async def test_one_request_settles_the_jurisdiction_once(
    client: httpx.AsyncClient, issuer: DevIssuer, db: asyncpg.Connection
) -> None:
    # The account overview asks `rightToKnow` and `withheld` together: both follow one
    # settlement, recorded once (a trigger counts the service's writes of it).
    await db.execute(
        """CREATE TABLE settlements_seen (id uuid);
        CREATE FUNCTION settlements_seen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO settlements_seen VALUES (NEW.id); RETURN NEW; END $$;
        CREATE TRIGGER settlements_seen AFTER UPDATE OF jurisdiction_at ON subjects
        FOR EACH ROW EXECUTE FUNCTION settlements_seen();
        GRANT INSERT ON settlements_seen TO PUBLIC;"""
    )
    try:
        carol = await rtk(client, issuer, "carol")
        assert carol["withheld"] and carol["rightToKnow"]["jurisdiction"]["key"]
        both = await db.fetchval("SELECT count(*) FROM settlements_seen")
        await db.execute("DELETE FROM settlements_seen")
        alone = await client.post(
            "/graphql",
            json={"query": "{ me { withheld { rule } } }"},
            headers={"Authorization": f"Bearer {issuer.mint('customer', 'carol')}"},
        )
        assert alone.status_code == 200, alone.text
        assert await db.fetchval("SELECT count(*) FROM settlements_seen") == 1
        assert both == 1
    finally:
        await db.execute(
            "DROP TRIGGER settlements_seen ON subjects; DROP FUNCTION settlements_seen(); "
            "DROP TABLE settlements_seen"
        )
