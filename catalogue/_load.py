"""Reading `policy.toml` into a `Catalogue`, checked completely before anything uses it."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from ._model import (
    CATEGORY_KEYS,
    FIELD_TYPES,
    MASKS,
    ORIGINS,
    Catalogue,
    Category,
    Contact,
    Field,
    Representative,
    Right,
    Term,
    Transfers,
)
from ._reader import CatalogueError, Reader, Table

_TOP = (
    "sources",
    "purposes",
    "recipients",
    "legal_bases",
    "retention",
    "categories",
    "controller",
    "representatives",
    "transfers",
    "rights",
    "non_discrimination",
    "authorized_agents",
    "withholding",
)
_CATEGORY_REQUIRED = (
    *("title", "description", "origin", "fields"),
    *("sources", "purposes", "recipients", "legal_bases", "retention"),
)
_CATEGORY_OPTIONAL = ("sensitive", "paged", "time_field", "shared_with", "policy_names")
# Vocabularies a category refers to by key: TOML name → what a message calls one entry.
_REFERENCES = {
    "sources": "source",
    "purposes": "purpose",
    "recipients": "recipient",
    "shared_with": "recipient",
    "legal_bases": "legal basis",
}


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue in `path`, or the one packaged with the service; `CatalogueError` if bad."""
    if path is None:
        packaged = resources.files("catalogue").joinpath("policy.toml")
        return _parse(packaged.read_text(encoding="utf-8"), str(packaged))
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(path, f"cannot be read ({type(exc).__name__})") from exc
    return _parse(text, str(path))


def _parse(text: str, source: str) -> Catalogue:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(source, f"is not valid TOML: {exc}") from exc
    r = Reader(source)
    top = r.table(data, "the file", required=_TOP)
    vocab = {
        name: _terms(r, top[name], name, noun)
        for name, noun in [*_REFERENCES.items(), ("retention", "retention rule")]
        if name != "shared_with"
    }
    vocab["shared_with"] = vocab["recipients"]
    categories = r.tables(top["categories"], "categories", "category")
    for key in CATEGORY_KEYS:
        if key not in categories:
            r.fail(f"category '{key}' is missing (CONTRACT.md lists it)")
    return Catalogue(
        categories=tuple(_category(r, k, t, vocab) for k, t in categories.items()),
        sources=tuple(vocab["sources"].values()),
        purposes=tuple(vocab["purposes"].values()),
        recipients=tuple(vocab["recipients"].values()),
        legal_bases=tuple(vocab["legal_bases"].values()),
        retention=tuple(vocab["retention"].values()),
        controller=_controller(r, top["controller"]),
        representatives=tuple(
            Representative(
                key=k,
                region=r.text(t, "region", f"representative '{k}'"),
                name=r.text(t, "name", f"representative '{k}'"),
                attention=r.text(t, "attention", f"representative '{k}'"),
                address=r.texts(t, "address", f"representative '{k}'"),
            )
            for k, t in _checked(r, top["representatives"], "representatives", "representative")
        ),
        transfers=_transfers(r, top["transfers"]),
        rights=tuple(
            Right(
                key=k,
                title=r.text(t, "title", f"right '{k}'"),
                description=r.text(t, "description", f"right '{k}'"),
                gdpr=r.optional_text(t, "gdpr", f"right '{k}'"),
                ccpa=r.optional_text(t, "ccpa", f"right '{k}'"),
            )
            for k, t in _checked(r, top["rights"], "rights", "right", ("gdpr", "ccpa"))
        ),
        non_discrimination=_section(r, top, "non_discrimination"),
        authorized_agents=_section(r, top, "authorized_agents"),
        withholding=_section(r, top, "withholding"),
        source=source,
    )


def _checked(
    r: Reader, value: object, section: str, noun: str, optional: tuple[str, ...] = ()
) -> list[tuple[str, Table]]:
    fields = {"representative": ("region", "name", "attention", "address")}
    required = fields.get(noun, ("title", "description"))
    out = []
    for key, t in r.tables(value, section, noun).items():
        r.table(t, f"{noun} '{key}'", required=required, optional=optional)
        out.append((key, t))
    return out


def _term(r: Reader, key: str, value: object, where: str, purpose: bool = False) -> Term:
    optional = ("group",) if purpose else ()
    t = r.table(value, where, required=("title", "description"), optional=optional)
    group = r.text(t, "group", where) if purpose else None
    return Term(key, r.text(t, "title", where), r.text(t, "description", where), group)


def _section(r: Reader, top: Table, name: str) -> Term:
    return _term(r, name, top[name], f"[{name}]")


def _terms(r: Reader, value: object, section: str, noun: str) -> dict[str, Term]:
    if not isinstance(value, dict) or not value:
        r.fail(f"[{section}] must hold at least one {noun}")
    purpose = section == "purposes"
    return {k: _term(r, r.key(k, noun), t, f"{noun} '{k}'", purpose) for k, t in value.items()}


def _category(r: Reader, key: str, t: Table, vocab: dict[str, dict[str, Term]]) -> Category:
    where = f"category '{key}'"
    if key not in CATEGORY_KEYS:
        r.fail(f"{where} is not a category of CONTRACT.md ({', '.join(CATEGORY_KEYS)})")
    r.table(t, where, required=_CATEGORY_REQUIRED, optional=_CATEGORY_OPTIONAL)
    refs: dict[str, tuple[Term, ...]] = {}
    for name, noun in _REFERENCES.items():
        keys = r.texts(t, name, where)
        for k in keys:
            if k not in vocab[name]:
                r.fail(f"{where} names unknown {noun} '{k}'")
        refs[name] = tuple(vocab[name][k] for k in keys)
    for name in ("sources", "purposes", "legal_bases"):
        if not refs[name]:
            r.fail(f"{where} must name at least one of its {name.replace('_', ' ')}")
    retention = r.text(t, "retention", where)
    if retention not in vocab["retention"]:
        r.fail(f"{where} names unknown retention rule '{retention}'")
    fields = _fields(r, t["fields"], where)
    time_field = r.optional_text(t, "time_field", where)
    if time_field is not None and time_field not in {f.name for f in fields}:
        r.fail(f"{where} has time_field '{time_field}', which is not one of its fields")
    paged = r.flag(t, "paged", where)
    if paged and time_field is None:
        # Relay pages are keyset pages ordered by (time field, id).
        r.fail(f"{where} is paged but has no time_field to order its pages by")
    return Category(
        key=key,
        title=r.text(t, "title", where),
        description=r.text(t, "description", where),
        origin=r.choice(t, "origin", where, ORIGINS),
        sensitive=r.flag(t, "sensitive", where),
        paged=paged,
        time_field=time_field,
        fields=fields,
        retention=vocab["retention"][retention],
        policy_names=r.texts(t, "policy_names", where),
        **refs,
    )


def _fields(r: Reader, value: object, where: str) -> tuple[Field, ...]:
    if not isinstance(value, list) or not value:
        r.fail(f"{where} must have at least one [[fields]] entry")
    out: list[Field] = []
    for i, raw in enumerate(value, 1):
        name = raw.get("name") if isinstance(raw, dict) else None
        at = f"{where} field '{name}'" if isinstance(name, str) else f"{where} field #{i}"
        t = r.table(raw, at, ("name", "type", "description"), ("withheld", "mask", "values"))
        r.key(r.text(t, "name", at), f"{where} field")
        if any(f.name == name for f in out):
            r.fail(f"{where} has field '{name}' twice")
        out.append(
            Field(
                name=r.text(t, "name", at),
                type=r.choice(t, "type", at, FIELD_TYPES),
                description=r.text(t, "description", at),
                withheld=r.flag(t, "withheld", at),
                mask=r.choice(t, "mask", at, MASKS),
                values=r.texts(t, "values", at),
            )
        )
    return tuple(out)


def _controller(r: Reader, value: object) -> Contact:
    where = "[controller]"
    t = r.table(value, where, ("name", "website", "email", "address"))
    email = r.optional_text(t, "email", where)
    if email is not None and (email.count("@") != 1 or " " in email or "[" in email):
        r.fail(f"{where}: 'email' {email!r} is not an e-mail address")
    return Contact(
        r.text(t, "name", where), r.text(t, "website", where), email, r.text(t, "address", where)
    )


def _transfers(r: Reader, value: object) -> Transfers:
    where = "[transfers]"
    required = ("hosted_in", "description", "safeguards", "dispute_resolution")
    t = r.table(value, where, required)
    safeguards = t["safeguards"]
    if not isinstance(safeguards, dict) or not safeguards:
        r.fail(f"{where} must name at least one safeguard")
    return Transfers(
        hosted_in=r.text(t, "hosted_in", where),
        description=r.text(t, "description", where),
        safeguards=tuple(
            _term(r, r.key(k, "safeguard"), v, f"safeguard '{k}'") for k, v in safeguards.items()
        ),
        dispute_resolution=_term(
            r, "dispute_resolution", t["dispute_resolution"], "[transfers.dispute_resolution]"
        ),
    )
