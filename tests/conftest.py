"""Shared fixtures: the seeds, a temporary SQLite store, and the CLI run in-process or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from paperdigest.cli import main

# CI explores the same examples every run (a red CI must mean a regression, not a new draw);
# locally each run draws new ones.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIXTURES = ROOT / "tests" / "fixtures"
GOLDEN = ROOT / "tests" / "golden"
# Capture dates of the seeds, fixed so tests do not depend on file modification times.
SEED_AS_OF = {
    "000_99135a5897ec12b8.txt": "2025-12-30",
    "001_3e4a064d45c80381.txt": "2026-03-12",
    "002_35bc1272005cc0d3.txt": "2026-11-03",
    "003_00886173680504fb.txt": "2026-11-02",
    "004_d0e4e6143df38525.txt": "2026-11-04",
}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's config or writes to their data directory."""
    monkeypatch.delenv("PAPERDIGEST_CONFIG", raising=False)
    monkeypatch.delenv("PAPERDIGEST_DB", raising=False)
    monkeypatch.delenv("PAPERDIGEST_SMTP_PASSWORD", raising=False)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'papers.db'}"


@pytest.fixture
def seed_paths() -> list[Path]:
    return sorted(SEEDS.iterdir())


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Run `paperdigest ARGS` in-process; returns exit code and captured output."""

    def run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield run


def run_subprocess(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    """Run `python -m paperdigest ARGS` as a real process."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "paperdigest", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=300,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def check_golden(relative: str, actual: str) -> None:
    """Compare `actual` with tests/golden/<relative>; PAPERDIGEST_REGEN_GOLDEN=1 rewrites it instead
    (then review the diff before committing)."""
    path = GOLDEN / relative
    if os.environ.get("PAPERDIGEST_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing: run with PAPERDIGEST_REGEN_GOLDEN=1 once and review it"
    expected = path.read_bytes().decode("utf-8")
    assert actual.splitlines() == expected.splitlines(), f"{relative} differs from its golden file"
    assert actual == expected
