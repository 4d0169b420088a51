"""docs/OPERATIONS.md: its table of environment variables is exactly what `Settings` reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from api import envtable
from api.settings import Settings

FIX = "run `.venv/bin/python -m api.envtable --write` and describe each new row"


def test_the_table_lists_every_variable_the_settings_read_and_no_other() -> None:
    guide = envtable.GUIDE.read_text()
    documented = list(envtable.rows_of(envtable._table_text(guide)))
    read = envtable.variables()
    missing = sorted(set(read) - set(documented))
    extra = sorted(set(documented) - set(read))
    assert not missing, f"read by api/settings.py, not in docs/OPERATIONS.md: {missing}: {FIX}"
    assert not extra, f"in docs/OPERATIONS.md, no longer read by api/settings.py: {extra}: {FIX}"
    assert envtable.UNDESCRIBED not in guide, f"an undescribed variable: {FIX}"
    assert envtable._table_text(guide).strip() == envtable.table(guide), FIX


def test_the_scan_sees_what_from_env_really_reads(tmp_path: Path) -> None:
    """Every name `Settings.from_env` asks the environment for is one the scan found."""

    class Recording(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            asked.add(key)
            return super().get(key, default)

    asked: set[str] = set()
    Settings.from_env(Recording(DSAR_HOME=str(tmp_path)))
    assert asked <= set(envtable.variables())
    assert {"DSAR_HOME", "DSAR_SECRET_KEY", "DSAR_AUDIENCE"} <= asked


def test_the_generator_command_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api.envtable"],
        capture_output=True,
        text=True,
        check=True,
        cwd=envtable.ROOT,
    )
    assert done.stdout.strip() == envtable.table()


def test_a_new_variable_shows_as_undescribed_until_described() -> None:
    guide = envtable.GUIDE.read_text()
    without = guide.replace("| `DSAR_EXPORTS_PER_DAY` |", "| `DSAR_GONE` |")
    rewritten = envtable.written(without)
    # The README still describes it, so the generator takes the meaning from there.
    assert "| `DSAR_EXPORTS_PER_DAY` | export requests per subject per day |" in rewritten
    assert "`DSAR_GONE`" not in rewritten
    assert envtable.table(without, readme="").count(envtable.UNDESCRIBED) == 1


def test_the_guide_names_every_scope_and_the_audience() -> None:
    guide = envtable.GUIDE.read_text()
    for word in ("dsar:self", "portability:pull", "support:read", "privacy:manage"):
        assert f"`{word}`" in guide
    for word in ("DSAR_AUDIENCE", "acr_values", "Key rotation", "dsar migrate", "dsar audit"):
        assert word in guide
