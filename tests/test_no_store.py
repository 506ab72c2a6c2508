"""A command that only looks at the store never creates one: a mistyped SQLite path, an empty
file or another program's database is one line and exit 1, not a new store reported healthy."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEEDS, run_subprocess

LOOKING = [
    ("status",),
    ("status", "--json"),
    ("papers", "--top", "5"),
    ("papers", "--topic", "agents", "--json"),
    ("digest",),
    ("subscribers", "list", "--json"),
    ("send", "--dry-run"),
]


@pytest.mark.parametrize("command", LOOKING, ids=" ".join)
def test_a_looking_command_on_a_mistyped_path_creates_nothing(cli: Any, tmp_path: Path, command: tuple[str]) -> None:
    store = tmp_path / "typo" / "papers.db"
    result = cli("--db", f"sqlite:///{store}", *command)
    assert result.code == 1, result.out + result.err
    assert result.out == ""
    assert result.err.strip() == (
        f"paperdigest: error: no store at {store} (no such file; nothing created): check --db, PAPERDIGEST_DB"
        " or [store] url; `paperdigest run --once`, `ingest` or `db upgrade` creates one"
    )
    assert not store.exists() and not store.parent.exists()


def test_status_on_a_mistyped_path_is_unhealthy_as_a_process(tmp_path: Path) -> None:
    """The monitoring check: a real process, exit 1, one line on stderr, no file left behind."""
    store = tmp_path / "papres.db"
    result = run_subprocess("--db", f"sqlite:///{store}", "status")
    assert result.code == 1
    assert result.err.count("\n") == 1 and f"no store at {store}" in result.err
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_is_no_store_and_stays_empty(cli: Any, tmp_path: Path) -> None:
    store = tmp_path / "papers.db"
    store.touch()
    for command in (("status",), ("papers",), ("db", "current")):
        result = cli("--db", f"sqlite:///{store}", *command)
        assert "(an empty file; nothing" in result.out + result.err
        assert store.stat().st_size == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["papers.db"]
    assert cli("--db", f"sqlite:///{store}", "status").code == 1
    assert cli("--db", f"sqlite:///{store}", "db", "current").code == 0  # a question, answered


def test_another_programs_database_is_left_as_it_was(cli: Any, tmp_path: Path) -> None:
    store = tmp_path / "other.db"
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.close()
    for command in (("status",), ("papers",), ("subscribers", "list"), ("db", "current")):
        result = cli("--db", f"sqlite:///{store}", *command)
        assert "a SQLite database without paperdigest's tables" in result.out + result.err
    with sqlite3.connect(store) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert tables == ["notes"] and mode == "delete"  # no table added, not turned into WAL


def test_a_store_made_by_a_writing_command_is_read_as_before(cli: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'papers.db'}"
    assert cli("--db", url, "ingest", str(SEEDS / "004_d0e4e6143df38525.txt")).code == 0
    status = cli("--db", url, "status", "--json")
    assert status.code == 0 and status.json_lines()[0]["dumps"] == 1
    assert len(cli("--db", url, "papers", "--top", "3", "--json").json_lines()) == 3


def test_the_in_memory_store_of_the_config_check_still_answers(cli: Any) -> None:
    """deploy/README.md checks a config with `--db sqlite:// status`: nothing persists there."""
    result = cli("--db", "sqlite://", "status", "--json")
    assert result.code == 0, result.err
    assert result.json_lines()[0]["papers"] == 0


def test_a_fresh_installs_first_status_makes_the_embedded_default_store(tmp_path: Path) -> None:
    """No config, no --db: the store under the state directory is the tool's own and cannot be
    mistyped, so `status` before the first run makes it (empty), as it always did, and answers."""
    state = tmp_path / "state"
    env = {"STATE_DIRECTORY": str(state)}
    result = run_subprocess("status", "--json", env=env, cwd=tmp_path)
    assert result.code in (0, 1), result.err  # 1: unhealthy (nothing polled yet), never an error
    assert "no store at" not in result.err
    report = json.loads(result.out)
    assert report["papers"] == 0
    assert (state / "papers.db").exists()
