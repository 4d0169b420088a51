"""The catalogue's attachments read against the policy text: recipients where the policy puts
them, lawful bases exactly as its lists give them, retention criteria, nothing invented (fields
and categories included), and every statement made to a person found in the policy.

Each test reads the policy beside the checkout and the packaged catalogue together, and would
have failed on the catalogue before issue 16 (consent for recordings, a legal obligation for
sensitive data, recipients attached to no category, an unmarked job title…).
"""

from __future__ import annotations

import re

import pytest

from catalogue import Catalogue, Category
from tests._policy import POLICY

PLAIN = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
# Sentences the catalogue says that are about the policy rather than quoted from it; each is
# checked against the policy by the test named beside it.
ABOUT_THE_POLICY = {
    # test_automated_decisions_are_described_as_the_policy_does
    "our privacy policy describes no decision based solely on automated processing that "
    "produces legal effects concerning you or similarly significantly affects you",
}


def norm(text: str) -> str:
    return " ".join(text.translate(PLAIN).split()).casefold()


@pytest.fixture(scope="module")
def policy() -> str:
    return norm(POLICY.read_text(encoding="utf-8"))


def sentences(text: str) -> list[str]:
    """A statement's sentences, each without its final stop (a URL keeps its own dots)."""
    parts = re.split(r"(?<=[.?!])\s+(?=[A-Z“\"])", " ".join(text.split()))
    return [norm(p).rstrip(".") for p in parts if p.strip()]


def quoted_in_policy(text: str, policy: str) -> list[str]:
    """The sentences of `text` that are not found in the policy word for word."""
    return [s for s in sentences(text) if s not in policy and s not in ABOUT_THE_POLICY]


def listed_in_policy(text: str, policy: str) -> list[str]:
    """The parts of a description that gathers a policy list ("They include a; b, and c")
    that are not in the policy word for word: each item must be."""
    missing = []
    for sentence in sentences(text):
        if sentence in policy:
            continue
        for part in re.split(r"; |, and |: |, (?=companies)", sentence):
            part = re.sub(r"^(they include|include|and|including) ", "", part.strip())
            if part and part not in policy:
                missing.append(part)
    return missing


def keys(terms: tuple[object, ...]) -> set[str]:
    return {t.key for t in terms}  # type: ignore[attr-defined]


# ── 1. Recipients ──────────────────────────────────────────────────────────────────────────


def test_recipients_are_attached_where_the_policy_says(catalogue: Catalogue, policy: str) -> None:
    # "We may access, preserve, and disclose any information we store associated with you"
    # (Legal Obligations) and "Personal data may be transferred" (Business Transfers): every
    # category. Hosting holds every category: Service Providers ("Hosting, technology and
    # communication providers").
    assert "disclose any information we store associated with you to external parties" in policy
    assert "personal data may be transferred to a third party if we undergo a merger" in policy
    assert "hosting, technology and communication providers" in policy
    for c in catalogue:
        assert {"external_parties", "business_transfers", "service_providers"} <= keys(
            c.recipients
        ), c.key


def test_business_partners_are_the_partners_a_person_authorises(
    catalogue: Catalogue, policy: str
) -> None:
    # "Businesses or advisors … with whom you elect to share or provide access to certain data
    # held in your Ontra account": the partners a person grants through dsar, which may
    # receive every portable category and nothing else.
    assert "with whom you elect to share or provide access to certain data" in policy
    for c in catalogue:
        assert ("business_partners" in keys(c.recipients)) == c.portable, c.key


def test_analytics_partners_hold_what_their_cookies_collect(
    catalogue: Catalogue, policy: str
) -> None:
    assert 'google llc ("google") uses cookies in connection with its google analytics' in policy
    analytics = next(r for r in catalogue.recipients if r.key == "analytics_partners")
    assert "Google Analytics" in analytics.description
    got = {c.key for c in catalogue if "analytics_partners" in keys(c.recipients)}
    # Page interactions, and the cookie identifiers and IP address they come with.
    assert got == {"web_analytics", "device"}


def test_parties_you_authorize_receive_the_account_data_you_sign_in_with(
    catalogue: Catalogue, policy: str
) -> None:
    assert "parties you authorize, access or authenticate" in policy
    got = {c.key for c in catalogue if "authorized_parties" in keys(c.recipients)}
    assert got == {"profile", "identifiers"}


def test_no_category_is_said_to_go_nowhere(catalogue: Catalogue) -> None:
    # The review found sensitive, provided, professional and preferences data shown as
    # disclosed to no one, although hosting, legal process and business transfers reach them.
    for key in ("sensitive", "provided", "professional", "preferences"):
        assert catalogue.category(key).recipients, key


# ── 3. Lawful bases ────────────────────────────────────────────────────────────────────────


def _listed(policy_lines: list[str], start: str, end: str) -> list[str]:
    i = next(n for n, line in enumerate(policy_lines) if line.startswith(start))
    j = next(n for n, line in enumerate(policy_lines) if n > i and line.startswith(end))
    return [ln.removeprefix("- ") for ln in policy_lines[i + 1 : j] if ln.startswith("- ")]


def _named(catalogue: Catalogue, name: str) -> Category | None:
    for c in catalogue:
        if norm(name) in {norm(c.title), *map(norm, c.policy_names)}:
            return c
    return None


def test_lawful_bases_are_exactly_the_policys_lists(catalogue: Catalogue) -> None:
    lines = [ln.strip() for ln in POLICY.read_text(encoding="utf-8").splitlines()]
    expected: dict[str, set[str]] = {c.key: set() for c in catalogue}
    for basis, start, end in [
        ("contractual_necessity", "Contractual Necessity:", "Legitimate Interest:"),
        ("legitimate_interest", "Legitimate Interest:", "Examples of these legitimate"),
    ]:
        for name in _listed(lines, start, end):
            c = _named(catalogue, name)
            if c is not None:
                expected[c.key].add(basis)
    # Consent and the other grounds name no category: no category may claim them.
    for c in catalogue:
        assert keys(c.legal_bases) == expected[c.key], c.key
        if not c.legal_bases:
            assert c.legal_bases_note, f"{c.key}: no lawful basis and no word about it"


def test_each_lawful_basis_note_says_what_the_policy_says(
    catalogue: Catalogue, policy: str
) -> None:
    for c in catalogue:
        if c.legal_bases_note is None:
            continue
        assert norm(c.legal_bases_note).startswith(
            "the policy's lists of lawful bases do not name this category"
        )
        # Anything quoted is the policy's own words.
        for quote in re.findall(r"“([^”]+)”", c.legal_bases_note):
            assert norm(quote).rstrip(".") in policy, (c.key, quote)
    recordings = catalogue.category("recordings").legal_bases_note or ""
    assert "your environment" in recordings and "consent" in recordings
    assert (
        "recordings of your environment (meeting recordings during sales and account "
        "management activities, with your consent)" in policy
    )


# ── 4. Retention criteria ─────────────────────────────────────────────────────────────────


def test_retention_criteria_are_the_policys(catalogue: Catalogue, policy: str) -> None:
    criteria = catalogue.retention_criteria
    assert criteria is not None
    assert "who we collected the data from" in criteria.description
    assert "sensitivity of the personal data" in criteria.description
    assert not quoted_in_policy(criteria.description, policy)
    for rule in catalogue.retention:
        assert not quoted_in_policy(rule.description, policy), rule.key


# ── 5. Nothing invented: fields and categories ─────────────────────────────────────────────

# Each field the policy names, with the words that name it (read in the policy below).
NAMED_BY = {
    ("profile", "first_name"): "first and last name",
    ("profile", "last_name"): "first and last name",
    ("profile", "email"): "profile or contact data",
    ("profile", "phone"): "profile or contact data",
    ("profile", "street"): "profile or contact data",
    ("profile", "city"): "profile or contact data",
    ("profile", "region"): "profile or contact data",
    ("profile", "postal_code"): "profile or contact data",
    ("profile", "country"): "profile or contact data",
    ("identifiers", "username"): "user name",
    ("identifiers", "password_hash"): "login credentials",
    ("identifiers", "security_question"): "login credentials",
    ("identifiers", "security_answer_hash"): "login credentials",
    ("payment", "account_holder"): "financial account information",
    ("payment", "bank_name"): "financial account information",
    ("payment", "account_number"): "financial account information",
    ("payment", "routing_number"): "financial account information",
    ("payment", "purpose"): "where needed to process refunds",
    ("device", "ip_address"): "ip address",
    ("device", "user_agent"): "browser or device information",
    ("device", "cookie_id"): "cookie identifiers",
    ("device", "device_id"): "other unique identifiers",
    ("device", "isp"): "internet service provider",
    ("web_analytics", "session_id"): "the frequency and duration of your activities",
    ("web_analytics", "page_url"): "pages that you visit",
    ("web_analytics", "action"): "information about the links you click",
    ("web_analytics", "element"): "the types of content you interact with",
    ("web_analytics", "referrer"): "pages that you visit before, during and after",
    ("web_analytics", "duration_ms"): "the frequency and duration of your activities",
    ("geolocation", "ip_address"): "ip-address-based coarse location",
    ("geolocation", "city"): "city",
    ("geolocation", "region"): "region",
    ("geolocation", "postal_code"): "postal code",
    ("geolocation", "country"): "country",
    ("geolocation", "time_zone"): "time zone",
    ("recordings", "file_name"): "photos, videos or recordings of you",
    ("recordings", "media_type"): "photos, videos or recordings of you",
    ("sensitive", "kind"): "driver's license, passport, or state identification card",
    ("sensitive", "value"): "personal identification numbers",
    ("provided", "channel"): "forms, surveys or questionnaires",
    ("provided", "title"): "emails, letters, or other communications you send us",
    ("provided", "body"): "emails, letters, or other communications you send us",
    ("professional", "company_name"): "company name",
}
# Bookkeeping of a record (its number, when it was made or changed, its size), not personal
# data of a kind the policy would name.
RECORD_KEEPING = {
    "id",
    "updated_at",
    "created_at",
    "collected_at",
    "submitted_at",
    "occurred_at",
    "observed_at",
    "recorded_at",
    "first_seen",
    "last_seen",
    "bytes",
}


def test_nothing_invented_field_by_field(catalogue: Catalogue, policy: str) -> None:
    for (key, name), words in NAMED_BY.items():
        assert norm(words) in policy, (key, name, words)
    unmarked = []
    for c in catalogue:
        if c.not_in_policy is not None:
            continue  # the whole category carries the mark
        for f in c.fields:
            named = (c.key, f.name) in NAMED_BY or f.name in RECORD_KEEPING
            if not named and f.not_in_policy is None:
                unmarked.append((c.key, f.name))
            if named and f.not_in_policy is not None:
                unmarked.append((c.key, f.name, "marked although the policy names it"))
    assert not unmarked, f"held, not named by the policy, and not marked: {unmarked}"


def test_what_the_policy_does_not_name_is_marked_with_a_reason(
    catalogue: Catalogue, policy: str
) -> None:
    assert "job title" not in policy
    job = catalogue.category("professional").field("job_title")
    assert job.not_in_policy and "job title" in job.not_in_policy
    assert "job title" not in catalogue.category("professional").description.casefold()
    prefs = catalogue.category("preferences")
    assert prefs.not_in_policy and "No chart or list of the policy names" in prefs.not_in_policy
    assert norm(prefs.title) not in policy.split("categories of personal data we collect")[1][:2000]
    # A category every chart and list leaves out is marked; the others are not.
    for c in catalogue:
        names = [c.title, *c.policy_names]
        if c.not_in_policy is None:
            assert any(norm(n) in policy for n in names), c.key


# ── 6. Statements ──────────────────────────────────────────────────────────────────────────


def test_every_statement_is_the_policys(catalogue: Catalogue, policy: str) -> None:
    keys_ = {s.key for s in catalogue.statements}
    assert keys_ >= {
        *("no_sale", "minors", "sensitive_purposes", "automated_decisions"),
        *("dpf_liability", "dpf_arbitration"),
    }
    for s in catalogue.statements:
        assert not quoted_in_policy(s.description, policy), s.key
    # The sale statement keeps "or other valuable consideration".
    assert "monetary or other valuable consideration" in catalogue.statement("no_sale").description
    assert "Federal Trade Commission" in catalogue.statement("dpf_liability").description
    assert "binding arbitration" in catalogue.statement("dpf_arbitration").description
    assert "minors under 18" in catalogue.statement("minors").description
    assert "7027(l)" in catalogue.statement("sensitive_purposes").description


def test_automated_decisions_are_described_as_the_policy_does(
    catalogue: Catalogue, policy: str
) -> None:
    said = catalogue.statement("automated_decisions").description
    assert "Interest-Based Ads" in said
    # The one sentence not quoted: true because the policy describes no such decision.
    for word in ("automated decision", "automated processing", "legal effect", "profiling"):
        assert word not in policy


def test_safeguards_say_which_data_they_cover(catalogue: Catalogue, policy: str) -> None:
    t = catalogue.transfers
    for s in t.safeguards:
        assert s.covers, s.key
    assert [s.key for s in t.safeguards_for("DE")] == ["eu_us_dpf"]
    assert [s.key for s in t.safeguards_for("GB")] == ["uk_extension"]
    assert [s.key for s in t.safeguards_for("CH")] == ["swiss_us_dpf"]
    assert t.safeguards_for("US") == ()
    assert "personal data received from the european union" in policy
    assert "processing of personal data received from switzerland" in policy


def test_the_contact_address_is_a_marked_stand_in(catalogue: Catalogue, policy: str) -> None:
    # The policy's copy hides the address from scrapers; the catalogue must not repeat that.
    assert "[email protected]" in policy
    c = catalogue.controller
    assert c.email == "privacy@ontra.ai" and c.demo_email and not c.usable_email
    assert c.email.split("@")[1] in catalogue.controller.website
    assert {r.key for r in catalogue.rights if r.by_request} == {
        *("access", "portability", "rectification", "erasure", "opt_out")
    }
    assert "to exercise the rights described in this privacy policy, please contact us" in policy
