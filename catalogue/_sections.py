"""The parts of the policy that are not categories: who we are, transfers, rights."""

from __future__ import annotations

import re

from ._model import (
    DISCLOSURES,
    UNKNOWN,
    Category,
    Choices,
    Contact,
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
from ._reader import Reader, Table

# Jurisdiction keys are stored on subjects and read by people: GDPR, CCPA, UNKNOWN.
_JURISDICTION_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,31}")


def term(
    r: Reader,
    key: str,
    value: object,
    where: str = "",
    purpose: bool = False,
    recipient: bool = False,
) -> Term:
    where = where or f"[{key}]"
    optional = ("group",) if purpose else ("disclosure",) if recipient else ()
    t = r.table(value, where, required=("title", "description", *optional))
    group = r.text(t, "group", where) if purpose else None
    disclosure = r.choice(t, "disclosure", where, DISCLOSURES) if recipient else None
    return Term(key, r.text(t, "title", where), r.text(t, "description", where), group, disclosure)


def controller(r: Reader, value: object) -> Contact:
    where = "[controller]"
    t = r.table(value, where, ("name", "website", "email", "address"), ("demo_email",))
    email = r.optional_text(t, "email", where)
    # The policy's own copy once held "[email protected]" (a web page's scrambled address):
    # refuse anything that could not receive mail rather than print it in a statement.
    if email is not None and (email.count("@") != 1 or any(c in email for c in " []")):
        r.fail(f"{where}: 'email' {email!r} is not an e-mail address")
    return Contact(
        name=r.text(t, "name", where),
        website=r.text(t, "website", where),
        email=email,
        address=r.text(t, "address", where),
        demo_email=r.flag(t, "demo_email", where),
    )


def representatives(r: Reader, value: object) -> tuple[Representative, ...]:
    out = []
    for key, raw in r.tables(value, "representatives", "representative").items():
        where = f"representative '{key}'"
        t = r.table(raw, where, ("region", "name", "attention", "address"))
        address = r.texts(t, "address", where)
        if not address:
            r.fail(f"{where}: 'address' must have at least one line")
        out.append(
            Representative(
                key=key,
                region=r.text(t, "region", where),
                name=r.text(t, "name", where),
                attention=r.text(t, "attention", where),
                address=address,
            )
        )
    return tuple(out)


def transfers(r: Reader, value: object) -> Transfers:
    where = "[transfers]"
    t = r.table(value, where, ("hosted_in", "description", "safeguards", "dispute_resolution"))
    safeguards = r.tables(t["safeguards"], "transfers.safeguards", "safeguard")
    if not safeguards:
        r.fail(f"{where} must name at least one safeguard")
    return Transfers(
        hosted_in=r.text(t, "hosted_in", where),
        description=r.text(t, "description", where),
        safeguards=tuple(safeguard(r, k, v) for k, v in safeguards.items()),
        dispute_resolution=term(
            r, "dispute_resolution", t["dispute_resolution"], "[transfers.dispute_resolution]"
        ),
    )


def rights(r: Reader, value: object) -> tuple[Right, ...]:
    out = []
    for key, raw in r.tables(value, "rights", "right").items():
        where = f"right '{key}'"
        t = r.table(raw, where, ("title", "description"), ("gdpr", "ccpa", "by_request"))
        out.append(
            Right(
                key=key,
                title=r.text(t, "title", where),
                description=r.text(t, "description", where),
                gdpr=r.optional_text(t, "gdpr", where),
                ccpa=r.optional_text(t, "ccpa", where),
                by_request=r.flag(t, "by_request", where),
            )
        )
    if not out:
        r.fail("[rights] must name at least one right")
    return tuple(out)


def jurisdictions(r: Reader, value: object) -> tuple[Jurisdiction, ...]:
    if not isinstance(value, dict):
        r.fail("[jurisdictions] must be a table of named tables")
    out = []
    for key, raw in value.items():
        where = f"jurisdiction '{key}'"
        if not _JURISDICTION_KEY.fullmatch(key):
            r.fail(f"{where} is not a valid key (upper case letters, digits, '_')")
        t = r.table(raw, where, ("title", "description"), ("countries", "regions", "release"))
        countries = _countries(r, t, where)
        regions = r.texts(t, "regions", where)
        if regions and len(countries) != 1:
            r.fail(f"{where}: 'regions' need exactly one country they are regions of")
        if key == UNKNOWN and (countries or regions):
            r.fail(f"{where} is for people whose residence is not known: it lists no places")
        out.append(
            Jurisdiction(
                key=key,
                title=r.text(t, "title", where),
                description=r.text(t, "description", where),
                countries=countries,
                regions=tuple(x.upper() for x in regions),
                release=r.optional_text(t, "release", where),
            )
        )
    if UNKNOWN not in {j.key for j in out}:
        r.fail(f"[jurisdictions] must define {UNKNOWN} (people whose residence is not known)")
    places = [(c, x) for j in out for c in j.countries for x in (j.regions or (None,))]
    if len(places) != len(set(places)):
        r.fail("[jurisdictions] name one place under two jurisdictions")
    return tuple(out)


def _countries(r: Reader, t: Table, where: str) -> tuple[str, ...]:
    countries = r.texts(t, "countries", where)
    if any(c != c.upper() or len(c) != 2 for c in countries):
        r.fail(f"{where}: 'countries' are ISO 3166-1 alpha-2 codes in upper case")
    return countries


def residence(r: Reader, value: object, categories: dict[str, tuple[str, ...]]) -> Residence:
    where = "[residence]"
    t = r.table(value, where, ("category", "country"), ("region",))
    category = r.text(t, "category", where)
    if category not in categories:
        r.fail(f"{where} names unknown category '{category}'")
    country = r.text(t, "country", where)
    region = r.optional_text(t, "region", where)
    for name in (country, region):
        if name is not None and name not in categories[category]:
            r.fail(f"{where}: '{name}' is not a field of category '{category}'")
    return Residence(category, country, region)


def safeguard(r: Reader, key: str, value: object) -> Safeguard:
    where = f"safeguard '{key}'"
    t = r.table(value, where, ("title", "description", "covers"), ("countries",))
    countries = _countries(r, t, where)
    return Safeguard(
        key=key,
        title=r.text(t, "title", where),
        description=r.text(t, "description", where),
        covers=r.text(t, "covers", where),
        countries=countries,
    )


def statements(r: Reader, value: object, jurisdiction_keys: set[str]) -> tuple[Statement, ...]:
    out = []
    for key, raw in r.tables(value, "statements", "statement").items():
        where = f"statement '{key}'"
        t = r.table(raw, where, ("title", "description"), ("jurisdictions", "law"))
        said_to = r.texts(t, "jurisdictions", where)
        for j in said_to:
            if j not in jurisdiction_keys:
                r.fail(f"{where} names unknown jurisdiction '{j}'")
        out.append(
            Statement(
                key=key,
                title=r.text(t, "title", where),
                description=r.text(t, "description", where),
                jurisdictions=said_to,
                law=r.optional_text(t, "law", where),
            )
        )
    return tuple(out)


def choices(r: Reader, value: object, categories: dict[str, tuple[str, ...]]) -> Choices:
    where = "[choices]"
    names = ("do_not_sell_or_share", "advertising_cookies", "analytics_cookies", "changed_at")
    t = r.table(value, where, ("category", *names))
    category = r.text(t, "category", where)
    if category not in categories:
        r.fail(f"{where} names unknown category '{category}'")
    for name in names:
        if r.text(t, name, where) not in categories[category]:
            r.fail(f"{where}: '{t[name]}' is not a field of category '{category}'")
    return Choices(category, *(r.text(t, n, where) for n in names))


def release_rules(
    r: Reader, value: object, categories: tuple[Category, ...]
) -> tuple[ReleaseRule, ...]:
    """Each rule names every withheld field once: released, or kept with its exception."""
    withheld = {(c.key, f.name) for c in categories for f in c.withheld_fields}
    out = []
    for key, raw in r.tables(value, "release_rules", "release rule").items():
        where = f"release rule '{key}'"
        t = r.table(raw, where, ("title", "description", "release", "exceptions"))
        release = tuple(_field_ref(r, x, where) for x in r.texts(t, "release", where))
        kept = t["exceptions"]
        if not isinstance(kept, dict):
            r.fail(f"{where}: 'exceptions' must be a table of category.field = reason")
        exceptions = []
        for ref, why in kept.items():
            if not isinstance(why, str) or not why.strip():
                r.fail(f"{where}: exception '{ref}' must say why")
            exceptions.append((*_field_ref(r, ref, where), " ".join(why.split())))
        named = [*release, *((c, f) for c, f, _ in exceptions)]
        if sorted(named) != sorted(withheld):
            r.fail(f"{where} must name each withheld field once, released or excepted")
        out.append(
            ReleaseRule(
                key=key,
                title=r.text(t, "title", where),
                description=r.text(t, "description", where),
                release=release,
                exceptions=tuple(exceptions),
            )
        )
    return tuple(out)


def _field_ref(r: Reader, ref: str, where: str) -> tuple[str, str]:
    category, dot, field = ref.partition(".")
    if not dot or not category or not field:
        r.fail(f"{where}: '{ref}' is not category.field")
    return category, field
