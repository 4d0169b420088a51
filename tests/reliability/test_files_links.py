"""A files store never follows a link out of a person's folder (issue 22, item 1), checked
through a running server whose stores file has a `files` store: a link planted in the person's
folder (to /etc/passwd, to the service's own secret key, to another person's recording, a folder
link to another person's folder) and a name ending in a newline are neither listed, nor served,
nor exported; the bundle counts them as held but not included, with the reason."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import httpx
import orjson

from api.devissuer import DevIssuer
from api.settings import Settings
from catalogue import Catalogue
from stores.files import LINK, UNSAFE_NAME
from stores.registry import Stores
from stores.seed import user_id
from tests.reliability._people import auth, gql, people, request_export
from tests.reliability.conftest import ServerFactory

RECORDINGS = "{ me { recordings { fileName bytes } } }"


async def test_links_and_unsafe_names_are_never_listed_served_or_exported(
    start_server: ServerFactory,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
    settings: Settings,
) -> None:
    root = stores.files("recordings").root
    [(victim, token), (other, _)] = await people(stores, catalogue, issuer, 2)
    folder = root / "users" / str(user_id(victim))
    theirs = next((root / "users" / str(user_id(other))).iterdir())
    # A signing key of the issuer the server trusts: it must never leave.
    secret = settings.home / "test-issuer" / "dev-issuer-es256.jwk.json"
    assert secret.is_file()
    planted: dict[str, Path] = {
        "passwd.wav": Path("/etc/passwd"),
        "key.png": secret,
        "theirs.png": theirs,
    }
    for name, target in planted.items():
        (folder / name).symlink_to(target)
    (folder / "sub").symlink_to(theirs.parent, target_is_directory=True)
    (folder / "evil.wav\n").write_bytes(b"x")
    try:
        server = await start_server()
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            listed = (await gql(client, token, RECORDINGS))["me"]["recordings"]
            names = {r["fileName"] for r in listed}
            assert names and not names & {*planted, "sub", "evil.wav\n"}, names
            for name in (*planted, "evil.wav%0A", "sub", "..%2F..%2Fsecret.key"):
                r = await client.get(f"/recordings/{name}", headers=auth(token))
                assert r.status_code == 404, (name, r.status_code)
            export = await request_export(client, token)
            r = await client.get(export["downloadUrl"], headers=auth(token))
            assert r.status_code == 200
        z = zipfile.ZipFile(io.BytesIO(r.content))
        assert not any("\n" in n for n in z.namelist())
        media = {n for n in z.namelist() if n.startswith("media/")}
        assert media == {f"media/{n}" for n in names}
        everything = b"".join(z.read(n) for n in z.namelist())
        for target in (Path("/etc/passwd"), secret, theirs):
            assert target.read_bytes() not in everything, target
        manifest = orjson.loads(z.read("manifest.json"))
        held = {
            n["reason"]: n["count"] for n in manifest["held_not_included"] if n["what"] == "files"
        }
        assert held == {LINK: len(planted) + 1, UNSAFE_NAME: 1}, held
    finally:
        for name in (*planted, "sub", "evil.wav\n"):
            os.unlink(folder / name)
