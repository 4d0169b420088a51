"""The catalogue against the privacy policy it encodes, and the loader against broken files.

"Nothing invented" checks each title of the catalogue against the policy text; "nothing
forgotten" parses the policy's lists and charts and checks each entry has a home in the
catalogue. Both read the policy beside the checkout, or the copy kept with the catalogue
(tests/_policy.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from catalogue import CATEGORY_KEYS, Catalogue, CatalogueError, Category, load_catalogue
from tests._policy import KEPT_POLICY, POLICY, SHARED_POLICY

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONTRACT = SHARED / "CONTRACT.md"
PACKAGED = Path(__file__).resolve().parents[1] / "catalogue/policy.toml"

# The database columns of each category, in order (stores/migrations); subject_id is not one.
COLUMNS = {
    "profile": "first_name last_name email phone street city region postal_code country updated_at",
    "identifiers": "username password_hash security_question security_answer_hash created_at",
    "payment": "id account_holder bank_name account_number routing_number purpose created_at",
    "device": "id ip_address user_agent cookie_id device_id isp first_seen last_seen",
    "web_analytics": "id occurred_at session_id page_url action element referrer duration_ms",
    "geolocation": "id observed_at ip_address city region postal_code country time_zone",
    "recordings": "file_name media_type bytes recorded_at",
    "sensitive": "id kind value collected_at",
    "provided": "id channel title body submitted_at",
    "professional": "company_name job_title updated_at",
    "preferences": "functional_cookies analytics_cookies advertising_cookies marketing_emails "
    "do_not_sell_or_share language updated_at",
}
# CCPA regulations §7024(d): government ID numbers, financial account numbers, passwords,
# security questions and answers.
WITHHELD = {
    ("identifiers", "password_hash"),
    ("identifiers", "security_question"),
    ("identifiers", "security_answer_hash"),
    ("payment", "account_number"),
    ("payment", "routing_number"),
    ("sensitive", "value"),
}


# Typographic quotes and dashes, written as escapes so the source shows which is which.
PLAIN = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)


def norm(text: str) -> str:
    return " ".join(text.translate(PLAIN).split()).casefold()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def policy() -> list[str]:
    return [line.strip() for line in POLICY.read_text(encoding="utf-8").splitlines()]


def section(lines: list[str], start: str, end: str) -> list[str]:
    """The lines after the one starting with `start`, up to the one starting with `end`."""
    i = next(n for n, line in enumerate(lines) if line.startswith(start))
    j = next(n for n, line in enumerate(lines) if n > i and line.startswith(end))
    return [line for line in lines[i + 1 : j] if line]


def table_rows(lines: list[str], start: str, width: int) -> list[list[str]]:
    """The rows of a chart after `start`: in the text version each cell is a line ending "|"."""
    i = next(n for n, line in enumerate(lines) if line.startswith(start))
    rule = next(n for n, line in enumerate(lines) if n > i and line.startswith("---|"))
    cells = []
    for line in lines[rule + 1 :]:
        if not line.endswith("|"):
            break
        cells.append(line.removesuffix("|").strip())
    assert len(cells) % width == 0, f"a ragged chart after {start!r}"
    return [cells[n : n + width] for n in range(0, len(cells), width)]


def named(catalogue: Catalogue, name: str) -> Category:
    for c in catalogue:
        if norm(name) in {norm(c.title), *map(norm, c.policy_names)}:
            return c
    raise AssertionError(f"no category of the catalogue is called {name!r} by the policy")


def test_keys_are_exactly_those_of_the_contract(catalogue: Catalogue) -> None:
    assert catalogue.keys == CATEGORY_KEYS == tuple(COLUMNS)
    assert [c.key for c in catalogue] == list(catalogue.keys)
    if not CONTRACT.is_file():
        pytest.skip(f"CONTRACT.md is not beside the checkout ({CONTRACT})")
    text = CONTRACT.read_text()
    keys_section = text.split("## Category keys", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"`(\w+)`", keys_section)) == set(catalogue.keys)


def test_fields_are_the_database_columns(catalogue: Catalogue) -> None:
    for key, columns in COLUMNS.items():
        assert [f.name for f in catalogue.category(key).fields] == columns.split(), key
    assert catalogue.category("provided").field("body").type == "text"
    assert catalogue.category("device").field("ip_address").type == "inet"
    assert catalogue.category("preferences").field("marketing_emails").type == "boolean"
    assert catalogue.category("sensitive").field("kind").values == (
        *("ssn", "drivers_license", "passport", "state_id"),
    )


def test_shape_of_each_category(catalogue: Catalogue) -> None:
    paged = {c.key for c in catalogue if c.paged}
    assert paged == {"device", "web_analytics", "geolocation", "provided"}
    assert {c.key for c in catalogue if c.sensitive} == {"sensitive"}
    assert {c.key for c in catalogue if c.origin == "observed"} == {
        *("device", "web_analytics", "recordings"),
    }
    assert catalogue.category("provided").time_field == "submitted_at"
    assert catalogue.category("profile").time_field is None
    assert catalogue.category("payment").retention.key == "payment"
    assert catalogue.category("sensitive").retention.key == "sensitive"
    assert catalogue.category("web_analytics").legal_bases[0].key == "legitimate_interest"
    # The policy's lists of lawful bases do not name recordings (tests/test_policy_attachments).
    assert catalogue.category("recordings").legal_bases == ()


def test_withheld_items_are_the_7024d_items(catalogue: Catalogue) -> None:
    held = {(c.key, f.name) for c in catalogue for f in c.withheld_fields}
    assert held == WITHHELD
    payment = catalogue.category("payment")
    assert "account_number" not in [f.name for f in payment.disclosed_fields]
    assert "7024(d)" in catalogue.withholding.title
    assert "security questions and answers" in catalogue.withholding.description


def test_inferred_data_is_not_portable(catalogue: Catalogue) -> None:
    assert not catalogue.category("geolocation").portable
    assert [c.key for c in catalogue if not c.portable] == ["geolocation"]


def test_lookup(catalogue: Catalogue) -> None:
    assert catalogue.category("payment").title == "Payment Data"
    with pytest.raises(KeyError):
        catalogue.category("nope")
    assert load_catalogue(PACKAGED).categories == catalogue.categories


def test_nothing_invented(catalogue: Catalogue, policy: list[str]) -> None:
    text = norm("\n".join(policy))
    titles = [c.title for c in catalogue] + [n for c in catalogue for n in c.policy_names]
    for vocab in (catalogue.sources, catalogue.purposes, catalogue.recipients):
        titles += [t.title for t in vocab]
    titles += [t.title for t in (*catalogue.legal_bases, *catalogue.retention)]
    titles += [p.description for p in catalogue.purposes]
    titles += [p.group or "" for p in catalogue.purposes]
    titles += [r.title for r in catalogue.rights]
    titles += [t.title for t in catalogue.transfers.safeguards]
    titles += [catalogue.non_discrimination.title, catalogue.authorized_agents.title]
    titles += [r.name for r in catalogue.representatives]
    titles += [catalogue.controller.address, catalogue.controller.website.removeprefix("https://")]
    invented = [t for t in titles if norm(t) not in text]
    assert not invented, f"not in the privacy policy: {invented}"


def test_every_purpose_bullet_is_a_purpose(catalogue: Catalogue, policy: list[str]) -> None:
    lines = section(policy, "We use personal data for a variety", "We disclose personal data to")
    # A heading is a line that does not follow a heading; the rest are purposes.
    group, bullets, after_heading = "", [], False
    for line in lines:
        if not line.startswith("- ") and not after_heading:
            group, after_heading = line, True
            continue
        bullets.append((norm(group), norm(line.removeprefix("- "))))
        after_heading = False
    assert len(bullets) == 19
    have = {(norm(p.group or ""), norm(p.description)) for p in catalogue.purposes}
    assert not [b for b in bullets if b not in have], "purposes missing from the catalogue"


def test_every_chart_row_is_a_category(catalogue: Catalogue, policy: list[str]) -> None:
    rows = table_rows(policy, "This chart details the categories", 2)
    cells = section(policy, "This chart details the categories", "Sources of Personal Data")
    assert len(rows) == 9 and len(cells) == 2 + 1 + 2 * 9, "the chart changed shape"
    assert {named(catalogue, name).key for name, _ in rows} == set(CATEGORY_KEYS) - {
        *("professional", "preferences"),  # named only in the share table / the choices
    }


def test_every_recipient_appears(catalogue: Catalogue, policy: list[str]) -> None:
    recipients = {norm(r.title) for r in catalogue.recipients}
    business = table_rows(policy, "We disclose personal data for business purposes", 3)
    for category, _, recipient in business:
        assert norm(recipient) in recipients
        assert norm(recipient) in map(
            norm, (r.title for r in named(catalogue, category).recipients)
        )
    lines = section(policy, "We disclose personal data to the following", "Information about")
    listed = []
    for n, line in enumerate(lines):
        if ". These parties" in line:
            listed.append(line.split(". These parties")[0])
        elif not line.startswith("- ") and n + 1 < len(lines) and lines[n + 1][:2] != "- ":
            listed.append(line)  # a heading whose description is the next line
    assert len(listed) == 5
    assert not [r for r in listed if norm(r) not in recipients]


def test_advertising_share_table(catalogue: Catalogue, policy: list[str]) -> None:
    shared = table_rows(policy, "We share your personal data for the purposes of cross", 3)
    assert len(shared) == 5
    for category, _, recipient in shared:
        titles = [norm(r.title) for r in named(catalogue, category).shared_with]
        assert norm(recipient) in titles, category
    keys = {named(catalogue, category).key for category, _, _ in shared}
    assert {c.key for c in catalogue if c.shared_with} == keys


def test_lawful_bases_lists(catalogue: Catalogue, policy: list[str]) -> None:
    for basis, start, end in [
        ("contractual_necessity", "Contractual Necessity:", "Legitimate Interest:"),
        ("legitimate_interest", "Legitimate Interest:", "Examples of these legitimate"),
    ]:
        for line in section(policy, start, end):
            if line.startswith("- ") and "de-identify" not in line:
                category = named(catalogue, line.removeprefix("- "))
                assert basis in [b.key for b in category.legal_bases], (basis, category.key)
    titles = {norm(b.title) for b in catalogue.legal_bases}
    lines = section(policy, "Lawful Bases for Processing", "Transfers of Personal Data")
    heads = {norm(line.split(": ")[0]) for line in lines if re.match(r"[A-Z][\w ]+: ", line)}
    assert heads == titles


# ── Broken catalogues: each a small edit of the real one ──────────────────────────────────────


def drop_tables(text: str, prefix: str) -> str:
    """The TOML text without the tables whose header starts with `prefix`."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            dropping = line.lstrip("[").startswith(prefix)
        if not dropping:
            kept.append(line)
    return "".join(kept)


PAYMENT_PURPOSES = 'purposes = ["transactions", "legal_obligations", "disputes"]'
BROKEN = {
    "unknown key": (
        ('title = "Payment Data"', 'title = "Payment Data"\ncolour = "blue"'),
        "category 'payment' has unknown key 'colour'",
    ),
    "unknown top-level table": (
        ("[controller]", "[controler.x]\n[controller]"),
        "the top level has unknown key 'controler'",
    ),
    "bad reference": (
        (PAYMENT_PURPOSES, 'purposes = ["transactions", "foo"]'),
        "category 'payment' names unknown purpose 'foo'",
    ),
    "bad recipient": (
        ('shared_with = ["advertising_partners"]', 'shared_with = ["data_brokers"]'),
        "category 'profile' names unknown recipient 'data_brokers'",
    ),
    "bad origin": (
        ('origin = "inferred"', 'origin = "guessed"'),
        "category 'geolocation' has origin 'guessed'",
    ),
    "bad type": (
        ('name = "bytes"\ntype = "integer"', 'name = "bytes"\ntype = "bigint"'),
        "category 'recordings' field 'bytes' has type 'bigint'",
    ),
    "bad mask": (
        ('mask = "email"', 'mask = "scramble"'),
        "category 'profile' field 'email' has mask 'scramble'",
    ),
    "duplicate field": (
        ('name = "last_name"', 'name = "first_name"'),
        "category 'profile' has field 'first_name' twice",
    ),
    "time field not a field": (
        ('time_field = "submitted_at"', 'time_field = "sent_at"'),
        "category 'provided' has time_field 'sent_at', which is not one of its fields",
    ),
    "unknown category": (
        ("[categories.preferences]", "[categories.hobbies]\n[categories.preferences]"),
        "category 'hobbies' is not a category key of CONTRACT.md",
    ),
    "field name too long to be held": (
        ('name = "last_name"', f'name = "{"n" * 59}"'),
        f"category 'profile' field '{'n' * 59}' is not a valid key (a lower case letter, then up",
    ),
    "bad toml": (
        ('title = "Payment Data"', 'title = "Payment Data'),
        "is not valid TOML",
    ),
    "scrambled e-mail": (
        ('email = "privacy@ontra.ai"', 'email = "[email protected]"'),
        "[controller]: 'email' '[email protected]' is not an e-mail address",
    ),
}


def write_broken(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def assert_one_line_error(path: Path, expected: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    assert expected in message


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_catalogue(tmp_path: Path, case: str) -> None:
    (old, new), expected = BROKEN[case]
    text = PACKAGED.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"the edit for {case!r} no longer applies"
    assert_one_line_error(write_broken(tmp_path, text.replace(old, new, 1)), expected)


def test_missing_category(tmp_path: Path) -> None:
    text = drop_tables(PACKAGED.read_text(encoding="utf-8"), "categories.preferences")
    path = write_broken(tmp_path, text)
    assert_one_line_error(path, "category 'preferences' is missing")


def test_unreadable_file(tmp_path: Path) -> None:
    assert_one_line_error(tmp_path / "absent.toml", "cannot be read")


def test_the_policy_kept_with_the_catalogue_is_the_policy() -> None:
    """The copy in catalogue/policy/ is what the tests read on a clone without ../shared; where
    the policy is beside the checkout, the two must be the same text."""
    assert KEPT_POLICY.is_file()
    if not SHARED_POLICY.is_file():
        pytest.skip(f"no policy beside the checkout to compare with ({SHARED_POLICY})")
    assert KEPT_POLICY.read_bytes() == SHARED_POLICY.read_bytes(), (
        f"the policy changed: copy {SHARED_POLICY} to {KEPT_POLICY} and check the catalogue"
    )
