"""Recording downloads, tokens only in the header, and the CLI's one-line errors."""

import re
from pathlib import Path

import httpx
import pytest

from api.devissuer import DevIssuer
from api.settings import Settings
from stores.deployment import DEMO_STORES
from stores.seed import build_subject
from tests._cli import cli_env, run_cli


async def test_a_customer_downloads_their_own_recording(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    alice = build_subject("alice", full=True, sensitive=True)
    name = "meeting-photo.png"
    r = await client.get(
        f"/recordings/{name}",
        headers={"Authorization": f"Bearer {issuer.mint('customer', 'alice')}"},
    )
    assert r.status_code == 200
    assert r.content == alice.files[name]
    assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("name", ["../alice/meeting-photo.png", "..%2Fx", "nope.png", ".hidden"])
async def test_names_cannot_leave_the_callers_folder(
    client: httpx.AsyncClient, issuer: DevIssuer, name: str
) -> None:
    r = await client.get(
        f"/recordings/{name}", headers={"Authorization": f"Bearer {issuer.mint('customer', 'bob')}"}
    )
    assert r.status_code == 404


async def test_another_subjects_file_is_the_same_404(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    # dave has no recordings: alice's file name gets the answer of a file that does not exist.
    token = issuer.mint("customer", "dave")
    mine = await client.get(
        "/recordings/meeting-photo.png", headers={"Authorization": f"Bearer {token}"}
    )
    missing = await client.get("/recordings/zzz.png", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == missing.status_code == 404
    assert mine.content == missing.content


async def test_tokens_in_the_query_string_or_body_are_never_accepted(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    token = issuer.mint("customer", "alice")
    r = await client.post(
        f"/graphql?access_token={token}", json={"query": "{ me { id } }", "access_token": token}
    )
    assert r.status_code == 401
    r = await client.post(
        "/graphql",
        content=f"access_token={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="dsar"'


@pytest.mark.parametrize(
    "header",
    ["Basic YWxpY2U6cHc=", "Bearer", "Bearer a b", "Token abc", "Bearer not.a.jwt"],
)
async def test_bad_authorization_headers_are_401(client: httpx.AsyncClient, header: str) -> None:
    r = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": header}
    )
    assert r.status_code == 401


async def test_lowercase_bearer_is_accepted(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    token = issuer.mint("customer", "alice")
    r = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"bearer {token}"}
    )
    assert r.status_code == 200


def test_a_broken_stores_file_stops_with_one_line(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "stores.toml"
    bad.write_text(DEMO_STORES.read_text().replace("postgresql://dsar_reader@crm", "nope", 1))
    env = cli_env(settings, tmp_path, DSAR_STORES=str(bad))
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "dsar migrate: stores.toml: stores.crm.dsn must be a postgresql:// URL"
    )
    assert "Traceback" not in result.stderr


def test_a_store_that_does_not_answer_is_named(settings: Settings, tmp_path: Path) -> None:
    stores = tmp_path / "stores.toml"
    # A company's own stores: dsar never migrates them.
    text = re.sub(r'migrations = "\w+"\n', "", DEMO_STORES.read_text())
    stores.write_text(
        text.replace(
            "postgresql://dsar_reader@app-replica:5432/app", "postgresql://nobody@127.0.0.1:9/none"
        )
    )
    env = cli_env(settings, tmp_path, DSAR_STORES=str(stores))
    result = run_cli("export", "alice", "--format", "json", "-o", str(tmp_path / "a.zip"), env=env)
    assert result.returncode == 2
    assert "store 'app' does not answer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_broken_catalogue_stops_with_one_line(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    packaged = Path(__file__).resolve().parents[1] / "catalogue" / "policy.toml"
    bad.write_text(packaged.read_text() + "\n[categories.horoscope]\ntitle = 'Stars'\n")
    env = cli_env(settings, tmp_path, DSAR_CATALOGUE=str(bad))
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "policy.toml" in lines[0]
    assert "horoscope" in lines[0]


def test_dev_tokens_are_refused_unless_asked_for(tmp_path: Path) -> None:
    env = {"DSAR_HOME": str(tmp_path), "DSAR_DEV_ISSUER": "true"}
    result = run_cli("token", "--customer", "alice", env=env)
    assert result.returncode == 2
    assert "development issuer is off" in result.stderr
    ok = run_cli("token", "--customer", "alice", env={**env, "DSAR_DEV_ISSUER": "1"})
    assert ok.returncode == 0
    assert ok.stdout.count(".") == 2


def test_serve_refuses_a_demo_contact_address_outside_development(
    settings: Settings, tmp_path: Path
) -> None:
    """Every right that works "by request" names the controller's e-mail: outside development
    `dsar serve` will not start while it is the demonstration stand-in, nor when it is empty."""
    env = cli_env(settings, tmp_path, DSAR_DEV_ISSUER="0")
    result = run_cli("serve", "--port", "1", env=env)
    assert result.returncode == 2
    assert "refusing to serve" in result.stderr and "privacy@ontra.ai" in result.stderr
    packaged = Path(__file__).resolve().parents[1] / "catalogue" / "policy.toml"
    empty = tmp_path / "policy.toml"
    text = packaged.read_text().replace(
        'email = "privacy@ontra.ai"\ndemo_email = true', 'email = ""'
    )
    empty.write_text(text)
    result = run_cli("serve", "--port", "1", env={**env, "DSAR_CATALOGUE": str(empty)})
    assert result.returncode == 2 and "is empty" in result.stderr
