"""`index.html`: the manifest for a person, in plain words, as one standalone page.

It is rendered from the manifest itself, so the page and the file can never disagree. Every
value is escaped (`html.escape`, attributes quoted) and links are relative paths inside the
bundle, percent-encoded; the page loads nothing from anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from catalogue import Category
from exporters.pages import table

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}"
)
_PURPOSE_TITLES = {
    "access": "A copy of your personal data",
    "portability": "Your personal data, ready to take elsewhere",
}


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _link(path: str, label: str | None = None) -> str:
    """A link to a file inside the bundle: a relative path, percent-encoded."""
    return f'<a href="{_e(quote(path))}">{_e(label or path)}</a>'


def _web_link(url: str) -> str:
    """A link to a web page: only http(s) URLs are links, kept as they are (escaped)."""
    if not url.startswith(("https://", "http://")):
        return _e(url)
    return f'<a href="{_e(url)}">{_e(url)}</a>'


def _list(items: Iterable[str]) -> str:
    body = "".join(f"<li>{i}</li>" for i in items)
    return f"<ul>{body}</ul>" if body else "<p>None.</p>"


def _titles(terms: Iterable[Mapping[str, Any]]) -> str:
    names = [_e(t["title"]) for t in terms]
    return "; ".join(names) if names else "None"


def _since(since: str | None) -> str:
    if since is None:
        return ""
    return (
        f"<p>This copy holds only what is new since {_e(since)}: records dated after that, "
        "in the categories whose records carry a date; the others are whole.</p>"
    )


def _disclosures(items: list[Mapping[str, Any]] | None, policy: str) -> str:
    """Per recipient: whether it received this data in the 12 months, and how we know."""
    if items is None:
        return policy
    if not items:
        return "No one."
    words = {True: "Yes", False: "No", None: "None recorded"}
    return _list(
        f"<strong>{_e(d['title'])}</strong>: {words[d['disclosed']]}. {_e(d['note'])}"
        for d in items
    )


def _bases(c: Mapping[str, Any]) -> str:
    said = _titles(c["legal_bases"]) if c["legal_bases"] else ""
    note = _e(c.get("legal_bases_note") or "")
    return "<br>".join(x for x in (said, note) if x) or "None"


def _data(key: str, c: Mapping[str, Any], preview: tuple[Category, list[Any]] | None) -> str:
    """The person's records themselves: the first few here, all of them in the pages."""
    if not c["records"] or preview is None:
        return "<p>We hold no records of this category about you.</p>" if not c["records"] else ""
    category, rows = preview
    shown = (
        f"The first {len(rows):,} of {c['records']:,} records"
        if c["records"] > len(rows)
        else "Your records"
    )
    pages = c.get("pages") or []
    links = ", ".join(_link(p, f"page {n}") for n, p in enumerate(pages, 1))
    more = f"<p>All of them, page by page: {links}.</p>" if pages else ""
    if c.get("pages_truncated"):
        files = ", ".join(_link(f["path"]) for f in c["files"][:1])
        more += f"<p>The pages stop there; every record is in {files}.</p>"
    return (
        f"<h4>{_e(shown)}</h4>{table(category, rows, media=key == 'recordings', prefix='')}{more}"
    )


def _service(m: Mapping[str, Any]) -> str:
    service = m.get("service") or {}
    if not service:
        return ""
    items = [
        f"{_link(s['file']['path'])}: {_e(s['description'])} ({s['records']:,} records)"
        for s in service.values()
    ]
    return "<h2>What this service itself holds about you</h2>" + _list(items)


def _category(
    key: str, c: Mapping[str, Any], preview: tuple[Category, list[Any]] | None = None
) -> str:
    files = "<br>".join(f"{_link(f['path'])} ({f['bytes']:,} bytes)" for f in c["files"])
    schema = _link(c["schema"]["path"], "description of the file") if c["schema"] else ""
    retention = c["retention"]
    kept = f"{_e(retention['title'])}. {_e(retention['description'])}"
    if retention.get("criteria"):
        kept += f"<br>{_e(retention['criteria'])}"
    rows = [
        ("Records", f"{c['records']:,}"),
        ("Files", files or "None"),
        ("File format", schema),
        ("Where it comes from", _titles(c["sources"])),
        ("Why we use it", _titles(c["purposes"])),
        (
            "Who we disclose it to, and whether we did in the 12 months before your request",
            _disclosures(c.get("disclosures"), _titles(c["recipients"])),
        ),
        (
            "Who we share it with for cross-context behavioral advertising, and whether we did",
            _disclosures(c.get("shared"), _titles(c["shared_with"])),
        ),
        ("Sold", "No: we do not sell personal information."),
        ("Our legal basis", _bases(c)),
        ("How long we keep it", kept),
    ]
    if c.get("not_in_policy"):
        rows.insert(0, ("Not named in our privacy policy", _e(c["not_in_policy"])))
    marked = [f for f in c["fields"] if f.get("not_in_policy")]
    if marked:
        rows.insert(
            0,
            (
                "Held, though our privacy policy does not name it",
                "<br>".join(f"{_e(f['description'])}: {_e(f['not_in_policy'])}" for f in marked),
            ),
        )
    table = "".join(f'<tr><th scope="row">{h}</th><td>{v}</td></tr>' for h, v in rows)
    return (
        f'<section id="{_e(key)}"><h3>{_e(c["title"])}</h3><p>{_e(c["description"])}</p>'
        f"{_data(key, c, preview)}"
        f"<table><caption>What we say of {_e(c['title'])}</caption>{table}</table></section>"
    )


def _withheld(m: Mapping[str, Any]) -> str:
    out = []
    given = m.get("released") or []
    if given:
        rule = m["release_rule"]
        items = []
        for w in given:
            kind = ", ".join(_e(v) for v in w["where"].values())
            title = m["categories"][w["category"]]["title"]
            items.append(
                f"{_e(w['description'])}{f' ({kind})' if kind else ''}, in {_e(title)}: "
                "in this copy"
            )
        out.append(
            f"<h3>Included for you</h3><p><strong>{_e(rule['title'])}</strong>: "
            f"{_e(rule['description'])}</p>{_list(items)}"
        )
    if not m["withheld"]:
        out.append("<p>None of the items a withholding rule covers is held about you.</p>")
        return "".join(out)
    items = []
    for w in m["withheld"]:
        kind = ", ".join(f"{_e(v)}" for v in w["where"].values())
        title = m["categories"][w["category"]]["title"]
        what = f"{_e(w['description'])}{f' ({kind})' if kind else ''}"
        why = f" {_e(w['reason'])}" if w.get("reason") else ""
        items.append(f"{what}, in {_e(title)}: held, not shown.{why}")
    rule = m["withholding_rule"]
    shown = any(not w.get("reason") for w in m["withheld"])
    text = (
        f"<p><strong>{_e(rule['title'])}</strong>: {_e(rule['description'])}</p>" if shown else ""
    )
    return "".join(out) + _list(items) + text


def _one(what: str) -> str:
    """`what` of a single one: "records with no date" is "record with no date"."""
    head, _, rest = what.partition(" ")
    return (head.removesuffix("s") + (" " + rest if rest else "")) if head in _PLURALS else what


_PLURALS = frozenset({"records", "files"})


def _not_included(m: Mapping[str, Any]) -> str:
    items = [
        f"{n['count']:,} {_e(_one(n['what']) if n['count'] == 1 else n['what'])}"
        + (f" in {_e(m['categories'][n['category']]['title'])}" if n["category"] else "")
        + f": {_e(n['reason'])}"
        for n in m.get("held_not_included", [])
    ]
    return _list(items) if items else ""


def _contact(m: Mapping[str, Any]) -> str:
    c = m["controller"]
    lines = [_e(c["name"]), _e(c["address"]), _web_link(c["website"])]
    if c["email"]:
        demo = " (a demonstration address: this copy was made by a demonstration)"
        lines.append(
            f'<a href="mailto:{_e(c["email"])}">{_e(c["email"])}</a>'
            + (demo if c.get("email_is_demo") else "")
        )
    reps = [
        f"{_e(r['region'])}: {_e(r['name'])}, attn. {_e(r['attention'])}, "
        + ", ".join(_e(a) for a in r["address"])
        for r in m["representatives"]
    ]
    return f"<p>{'<br>'.join(lines)}</p><h3>Our representatives</h3>{_list(reps)}"


def _who(m: Mapping[str, Any]) -> str:
    if "subject_ref" in m:
        return f"the person this partner knows by the reference {_e(m['subject_ref'])}"
    return f"the person with id {_e(m['subject_id'])}"


def _person(m: Mapping[str, Any]) -> str:
    """Whose law applies, and the period the disclosures above cover (own copy only)."""
    if "jurisdiction" not in m:
        return ""
    j, p = m["jurisdiction"], m["period"]
    return (
        f"<h2>Whose law applies to you</h2><p><strong>{_e(j['title'])}</strong>: "
        f"{_e(j['description'])}</p>"
        f"<p>What we say of disclosures covers the 12 months from {_e(p['from'])} to "
        f"{_e(p['to'])}. Your choices as we hold them: {_e(m['choices'])}</p>"
    )


def render_index(
    m: Mapping[str, Any], previews: Mapping[str, tuple[Category, list[Any]]] | None = None
) -> str:
    previews = previews or {}
    cats = m["categories"]
    overview = "".join(
        f'<tr><td><a href="#{_e(k)}">{_e(c["title"])}</a></td><td>{c["records"]:,}</td></tr>'
        for k, c in cats.items()
    )
    left_out = [f"{_e(x['title'])}: {_e(x['reason'])}" for x in m["left_out"]]
    stores = [
        f"{_e(s['name'])} ({_e(', '.join(s['categories']))}), searched {_e(s['searched_at'])}"
        for s in m["stores"]
    ]
    rights = [
        f"<strong>{_e(r['title'])}</strong>: {_e(r['description'])}"
        + (f" {_e(r['how'])}" if r.get("how") else "")
        for r in m["rights"]
    ]
    t = m["transfers"]
    safeguards = [
        f"<strong>{_e(s['title'])}</strong>: {_e(s['description'])} "
        f"It covers: {_e(s['covers'])}."
        + (" <strong>It covers your data.</strong>" if s.get("covers_yours") else "")
        for s in t["safeguards"]
    ]
    statements = "".join(
        f"<h3>{_e(s['title'])}</h3><p>{_e(s['description'])}</p>" for s in m["statements"]
    )
    csv_rule = m.get("csv_formula_rule")
    csv_note = f"<h2>About the CSV files</h2><p>{_e(csv_rule['rule'])}</p>" if csv_rule else ""
    title = _PURPOSE_TITLES.get(m["purpose"], "Your personal data")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}: {_e(m["controller"]["name"])}</title>
<style>{_STYLE}</style>
</head>
<body>
<main>
<h1>{_e(title)}</h1>
<p>{_e(m["purpose_description"])}</p>{_since(m.get("since"))}
<p>Made on {_e(m["generated_at"])} for {_who(m)}
(export {_e(m["export_id"])}), as {_e(m["format"].upper())} files.
The file {_link("manifest.json")} says the same in a form programs can read.</p>
<h2>What is in this export</h2>
<table><caption>Records per category</caption>
<tr><th scope="col">Category</th><th scope="col">Records</th></tr>{overview}</table>
{"".join(_category(k, c, previews.get(k)) for k, c in cats.items())}
{_service(m)}
{_person(m)}
<h2>What we say to everyone who asks</h2>
{statements}
<h2>What this export leaves out</h2>
{_list(left_out)}
<h2>What we hold but do not show</h2>
{_withheld(m)}{_not_included(m)}
<h2>Where we looked</h2>
{_list(stores)}
{csv_note}
<h2>Your rights</h2>
{_list(rights)}
<p><strong>{_e(m["non_discrimination"]["title"])}</strong>:
{_e(m["non_discrimination"]["description"])}</p>
<p><strong>{_e(m["authorized_agents"]["title"])}</strong>:
{_e(m["authorized_agents"]["description"])}</p>
<h2>Transfers of your data</h2>
<p>{_e(t["description"])}</p>
{_list(safeguards)}
<p><strong>{_e(t["dispute_resolution"]["title"])}</strong>:
{_e(t["dispute_resolution"]["description"])}</p>
<h2>Contact us</h2>
{_contact(m)}
</main>
</body>
</html>
"""
