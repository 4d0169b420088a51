"""Reading `policy.toml` into a `Catalogue`, checked completely before anything uses it."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from ._model import CATEGORY_KEYS, FIELD_TYPES, MASKS, ORIGINS, Catalogue, Category, Field, Term
from ._reader import CatalogueError, Reader, Table
from ._sections import (
    choices,
    controller,
    jurisdictions,
    release_rules,
    representatives,
    residence,
    rights,
    statements,
    term,
    transfers,
)

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
    "jurisdictions",
    "residence",
    "choices",
    "release_rules",
    "retention_criteria",
    "statements",
)
_CATEGORY_REQUIRED = (
    *("title", "description", "origin", "fields"),
    *("sources", "purposes", "recipients", "legal_bases", "retention"),
)
_CATEGORY_OPTIONAL = (
    *("sensitive", "paged", "time_field", "shared_with", "policy_names"),
    *("legal_bases_note", "not_in_policy"),
)
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
    top = r.table(data, "the top level", required=_TOP)
    vocab = {
        "sources": _terms(r, top["sources"], "sources", "source"),
        "purposes": _terms(r, top["purposes"], "purposes", "purpose"),
        "recipients": _terms(r, top["recipients"], "recipients", "recipient"),
        "legal_bases": _terms(r, top["legal_bases"], "legal_bases", "legal basis"),
        "retention": _terms(r, top["retention"], "retention", "retention rule"),
    }
    vocab["shared_with"] = vocab["recipients"]
    categories = r.tables(top["categories"], "categories", "category")
    for key in categories:
        if key not in CATEGORY_KEYS:
            known = ", ".join(CATEGORY_KEYS)
            r.fail(f"category '{key}' is not a category key of CONTRACT.md ({known})")
    for key in CATEGORY_KEYS:
        if key not in categories:
            r.fail(f"category '{key}' is missing (CONTRACT.md lists it)")
    built = tuple(_category(r, k, t, vocab) for k, t in categories.items())
    fields = {c.key: tuple(f.name for f in c.fields) for c in built}
    places = jurisdictions(r, top["jurisdictions"])
    rules = release_rules(r, top["release_rules"], built)
    for j in places:
        if j.release is not None and j.release not in {x.key for x in rules}:
            r.fail(f"jurisdiction '{j.key}' names unknown release rule '{j.release}'")
    return Catalogue(
        categories=built,
        sources=tuple(vocab["sources"].values()),
        purposes=tuple(vocab["purposes"].values()),
        recipients=tuple(vocab["recipients"].values()),
        legal_bases=tuple(vocab["legal_bases"].values()),
        retention=tuple(vocab["retention"].values()),
        controller=controller(r, top["controller"]),
        representatives=representatives(r, top["representatives"]),
        transfers=transfers(r, top["transfers"]),
        rights=rights(r, top["rights"]),
        non_discrimination=term(r, "non_discrimination", top["non_discrimination"]),
        authorized_agents=term(r, "authorized_agents", top["authorized_agents"]),
        withholding=term(r, "withholding", top["withholding"]),
        source=source,
        jurisdictions=places,
        residence=residence(r, top["residence"], fields),
        choices=choices(r, top["choices"], fields),
        release_rules=rules,
        retention_criteria=term(r, "retention_criteria", top["retention_criteria"]),
        statements=statements(r, top["statements"], {j.key for j in places}),
    )


def _terms(r: Reader, value: object, section: str, noun: str) -> dict[str, Term]:
    if not isinstance(value, dict) or not value:
        r.fail(f"[{section}] must hold at least one {noun}")
    purpose, recipient = section == "purposes", section == "recipients"
    return {
        k: term(r, r.key(k, noun), t, f"{noun} '{k}'", purpose, recipient) for k, t in value.items()
    }


def _category(r: Reader, key: str, t: Table, vocab: dict[str, dict[str, Term]]) -> Category:
    where = f"category '{key}'"
    r.table(t, where, required=_CATEGORY_REQUIRED, optional=_CATEGORY_OPTIONAL)
    refs: dict[str, tuple[Term, ...]] = {}
    for name, noun in _REFERENCES.items():
        keys = r.texts(t, name, where)
        for k in keys:
            if k not in vocab[name]:
                r.fail(f"{where} names unknown {noun} '{k}'")
        refs[name] = tuple(vocab[name][k] for k in keys)
    legal_bases_note = r.optional_text(t, "legal_bases_note", where)
    for name in ("sources", "purposes", "legal_bases"):
        if name == "legal_bases" and legal_bases_note is not None:
            continue  # the note says what the policy states instead
        if not refs[name]:
            r.fail(f"{where} must name at least one of its {name.replace('_', ' ')}")
    retention = r.text(t, "retention", where)
    if retention not in vocab["retention"]:
        r.fail(f"{where} names unknown retention rule '{retention}'")
    fields = _fields(r, t["fields"], where)
    time_field = r.optional_text(t, "time_field", where)
    fields_by_name = {f.name: f for f in fields}
    if time_field is not None and time_field not in fields_by_name:
        r.fail(f"{where} has time_field '{time_field}', which is not one of its fields")
    if time_field is not None and fields_by_name[time_field].withheld:
        r.fail(f"{where} has time_field '{time_field}', which is withheld")
    paged = r.flag(t, "paged", where)
    # Relay pages are keyset pages ordered by (time field, id): both must exist.
    if paged and (time_field is None or "id" not in fields_by_name):
        r.fail(f"{where} is paged, so it needs a time_field and an 'id' field")
    return Category(
        key=key,
        title=r.text(t, "title", where),
        description=r.text(t, "description", where),
        origin=r.choice(t, "origin", where, ORIGINS),
        sensitive=r.flag(t, "sensitive", where),
        paged=paged,
        time_field=time_field,
        fields=fields,
        sources=refs["sources"],
        purposes=refs["purposes"],
        recipients=refs["recipients"],
        shared_with=refs["shared_with"],
        legal_bases=refs["legal_bases"],
        retention=vocab["retention"][retention],
        policy_names=r.texts(t, "policy_names", where),
        legal_bases_note=legal_bases_note,
        not_in_policy=r.optional_text(t, "not_in_policy", where),
    )


def _labels(r: Reader, t: Table, where: str) -> tuple[tuple[str, str], ...]:
    """`labels = { submit = "Sent a form" }`: words for stored values, each one of `values`
    when the field lists them."""
    raw = t.get("labels", {})
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        r.fail(f"{where}: 'labels' must be a table of non-empty strings")
    values = r.texts(t, "values", where)
    for code in raw:
        if values and code not in values:
            r.fail(f"{where}: label for '{code}', which is not one of its values")
    return tuple((code, " ".join(words.split())) for code, words in raw.items())


def _fields(r: Reader, value: object, where: str) -> tuple[Field, ...]:
    if not isinstance(value, list) or not value:
        r.fail(f"{where} must have at least one [[fields]] entry")
    out: list[Field] = []
    for i, raw in enumerate(value, 1):
        name = raw.get("name") if isinstance(raw, dict) else None
        at = f"{where} field '{name}'" if isinstance(name, str) else f"{where} field #{i}"
        optional = ("withheld", "mask", "values", "not_in_policy", "labels")
        t = r.table(raw, at, ("name", "type", "description"), optional)
        name = r.key(r.text(t, "name", at), f"{where} field")
        if any(f.name == name for f in out):
            r.fail(f"{where} has field '{name}' twice")
        out.append(
            Field(
                name=name,
                type=r.choice(t, "type", at, FIELD_TYPES),
                description=r.text(t, "description", at),
                withheld=r.flag(t, "withheld", at),
                mask=r.choice(t, "mask", at, MASKS),
                values=r.texts(t, "values", at),
                not_in_policy=r.optional_text(t, "not_in_policy", at),
                labels=_labels(r, t, at),
            )
        )
    return tuple(out)
