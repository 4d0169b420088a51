"""`dsar export`: a whole file on success, no file at all otherwise."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import zipfile
from pathlib import Path

import asyncpg
import orjson
import pytest

from api.cli._common import CommandError
from api.cli.export import add_export_parser, cmd_export
from api.settings import Settings
from stores.registry import Stores
from stores.seed import subject_id


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dsar")
    add_export_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(argv)


async def test_export_writes_a_whole_bundle(
    settings: Settings, stores: Stores, tmp_path: Path
) -> None:
    out = tmp_path / "alice.zip"
    args = parse(["export", "alice", "--format", "csv", "--purpose", "portability", "-o", str(out)])
    # cmd_export runs its own event loop, as `dsar` does: give it a thread of its own.
    assert await asyncio.to_thread(cmd_export, settings, args) == 0
    assert not out.with_name("alice.zip.part").exists()
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
        m = orjson.loads(z.read("manifest.json"))
    assert (m["subject_id"], m["format"], m["purpose"]) == (
        str(subject_id("alice")),
        "csv",
        "portability",
    )
    assert "geolocation" not in m["categories"]


async def test_export_by_id_of_a_category_subset(
    settings: Settings, stores: Stores, tmp_path: Path
) -> None:
    out = tmp_path / "bob.zip"
    sid = str(subject_id("bob"))
    args = parse(
        [
            "export",
            sid,
            "--format",
            "json",
            "--categories",
            "profile,payment",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert await asyncio.to_thread(cmd_export, settings, args) == 0
    with zipfile.ZipFile(out) as z:
        assert {n for n in z.namelist() if n.startswith("data/")} == {
            "data/profile.json",
            "data/payment.json",
        }


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "nobody", "--format", "json"],
        ["export", "alice", "--format", "json", "--categories", "profile,nope"],
    ],
)
async def test_a_failed_export_leaves_no_file(
    settings: Settings, stores: Stores, tmp_path: Path, argv: list[str]
) -> None:
    out = tmp_path / "x.zip"
    with pytest.raises(CommandError):
        await asyncio.to_thread(cmd_export, settings, parse([*argv, "-o", str(out)]))
    assert os.listdir(tmp_path) == []


def test_the_parser_offers_the_registered_formats() -> None:
    with pytest.raises(SystemExit):
        parse(["export", "alice", "--format", "xml", "-o", "x.zip"])


async def test_export_reads_the_configured_catalogue(
    settings: Settings, stores: Stores, tmp_path: Path, repo_root: Path
) -> None:
    """`DSAR_CATALOGUE` (Settings.catalogue_file) is the catalogue the bundle describes."""
    policy = (repo_root / "catalogue" / "policy.toml").read_text(encoding="utf-8")
    custom = tmp_path / "policy.toml"
    custom.write_text(policy.replace('name = "Ontra"', 'name = "Ontra Configured"', 1))
    out = tmp_path / "carol.zip"
    args = parse(["export", "carol", "--format", "json", "-o", str(out)])
    configured = dataclasses.replace(settings, catalogue_file=custom)
    assert await asyncio.to_thread(cmd_export, configured, args) == 0
    with zipfile.ZipFile(out) as z:
        manifest = orjson.loads(z.read("manifest.json"))
    assert manifest["controller"]["name"] == "Ontra Configured"


async def test_export_by_the_anchor_key_names_a_person_of_the_company(
    settings: Settings, stores: Stores, tmp_path: Path
) -> None:
    """`user_id=VALUE`: the company's own id. A person the company holds but dsar has never
    seen gets a subject of their own, and their data from every system that knows them."""
    app = await asyncpg.connect(stores.config.store("app").dsn)
    await app.execute(
        "INSERT INTO users (id, email, username, given_name, family_name, signed_up_at, "
        "profile_updated_at) VALUES (4242, 'erin@example.com', 'erin', 'Erin', 'Quill', "
        "'2025-02-01', '2025-02-01')"
    )
    await app.close()
    out = tmp_path / "erin.zip"
    args = parse(["export", "user_id=4242", "--format", "json", "-o", str(out), "--no-progress"])
    assert await asyncio.to_thread(cmd_export, settings, args) == 0
    with zipfile.ZipFile(out) as z:
        m = orjson.loads(z.read("manifest.json"))
        profile = orjson.loads(z.read("data/profile.json"))
    assert profile[0]["email"] == "erin@example.com"
    assert m["categories"]["profile"]["records"] == 1
    assert m["subject_id"] == str(await stores.subject_for_anchor("4242"))
    # The same person by the same id is the same subject.
    assert await stores.subject_for_anchor("4242") == await stores.subject_for_anchor("4242")


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("email=alice@example.com", "'email' is not the anchor key: a subject is user_id=VALUE"),
        ("user_id=99999999", "no user_id '99999999' in the company's systems"),
        ("user_id=alice", "no user_id 'alice' in the company's systems"),
        ("user_id=1; DROP TABLE users", "no user_id '1; DROP TABLE users'"),
        ("nobody", "no such subject: a subject is user_id=VALUE, a subject id, or a demo handle"),
    ],
)
async def test_a_bad_subject_says_which_forms_a_subject_may_take(
    settings: Settings, stores: Stores, tmp_path: Path, ref: str, says: str
) -> None:
    out = tmp_path / "x.zip"
    with pytest.raises(CommandError) as info:
        await asyncio.to_thread(
            cmd_export, settings, parse(["export", ref, "--format", "json", "-o", str(out)])
        )
    assert says in str(info.value)
    assert os.listdir(tmp_path) == []
