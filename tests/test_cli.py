"""The command line: help, store selection, JSON shapes, exit codes, backfill behaviour."""

from __future__ import annotations

import argparse
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paperdigest.cli import build_parser
from paperdigest.store.engine import shown_url as display_url
from tests.conftest import ROOT, SEED_AS_OF, SEEDS, run_subprocess
from tests.storehelp import columns, scalar, table

INGEST_KEYS = {"source", "as_of", "entries", "new", "updated", "unchanged", "duplicate_dump"}
PAPER_KEYS = {"title", "arxiv_id", "upvotes", "published", "first_seen", "authors", "org"}
# What the daily-papers API adds (issue 12): null when a listing did not say (every text dump).
API_PAPER_KEYS = {
    "author_names", "ai_summary", "ai_keywords", "github_repo", "github_stars", "project_page", "comments",
    "withdrawn_at",
}


def dated_seeds(folder: Path) -> Path:
    """The seeds renamed with their capture dates, so the dates do not hang on file times."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, as_of in SEED_AS_OF.items():
        shutil.copyfile(SEEDS / name, folder / f"{as_of}_{name}")
    return folder


def test_every_command_has_help(cli: Any) -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    names = list(subparsers.choices)  # type: ignore[attr-defined]
    assert {"parse", "ingest", "backfill", "papers", "status"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as exit_info:
            cli(name, "--help")
        assert exit_info.value.code == 0
        assert subparsers.choices[name].description  # type: ignore[attr-defined]


def test_python_dash_m_daemon_is_the_command(tmp_path: Path) -> None:
    result = run_subprocess("--help")
    assert result.code == 0 and "backfill" in result.out


def test_ingest_json_shape_and_duplicate(cli: Any, db_url: str) -> None:
    seed = str(SEEDS / "004_d0e4e6143df38525.txt")
    first = cli("--db", db_url, "ingest", seed, "--as-of", "2026-11-04", "--json")
    assert first.code == 0, first.err
    (line,) = first.json_lines()
    assert set(line) == INGEST_KEYS
    assert line["as_of"] == "2026-11-04" and line["entries"] == 75 and line["duplicate_dump"] is False
    second = cli("--db", db_url, "ingest", seed, "--as-of", "2026-11-04", "--json")
    assert second.json_lines()[0]["duplicate_dump"] is True
    assert second.json_lines()[0]["new"] == 0 and second.json_lines()[0]["updated"] == 0


def test_ingest_dry_run_stores_nothing(cli: Any, db_url: str) -> None:
    result = cli("--db", db_url, "ingest", str(SEEDS / "004_d0e4e6143df38525.txt"), "--dry-run")
    assert result.code == 0 and "dry run" in result.out
    assert scalar(db_url, "SELECT count(*) FROM paper") == 0


# Where the embedded default (SQLite) puts its file: not a question for PostgreSQL.
def test_store_choice_flag_env_default(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = str(SEEDS / "004_d0e4e6143df38525.txt")
    assert cli("ingest", seed).code == 0
    assert (tmp_path / "state" / "papers.db").exists()  # the embedded default: $STATE_DIRECTORY
    monkeypatch.setenv("PAPERDIGEST_DB", f"sqlite:///{tmp_path / 'env.db'}")
    assert cli("ingest", seed).code == 0
    assert (tmp_path / "env.db").exists()
    assert cli("--db", f"sqlite:///{tmp_path / 'flag.db'}", "ingest", seed).code == 0
    assert (tmp_path / "flag.db").exists()


def test_default_store_without_state_directory_is_xdg(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY")
    assert cli("ingest", str(SEEDS / "004_d0e4e6143df38525.txt")).code == 0
    assert (tmp_path / "xdg" / "paperdigest" / "papers.db").exists()


def test_bad_db_url_is_a_usage_error(cli: Any) -> None:
    result = cli("--db", "not a url", "status")
    assert result.code == 2 and "--db" in result.err


def test_unusable_store_is_a_runtime_error(cli: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("--db", f"sqlite:///{blocker}/sub/papers.db", "status")
    assert result.code == 1 and "store" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_postgresql_server_that_is_not_there_is_a_runtime_error(cli: Any) -> None:
    result = cli("--db", "postgresql+psycopg://nobody:s3cret@127.0.0.1:1/papers?connect_timeout=5", "status")
    assert result.code == 1 and "store" in result.err and "s3cret" not in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_papers_best_first(cli: Any, db_url: str, tmp_path: Path) -> None:
    assert cli("--db", db_url, "backfill", str(dated_seeds(tmp_path / "d")), "--json").code == 0
    result = cli("--db", db_url, "papers", "--top", "7", "--json")
    papers = result.json_lines()
    assert len(papers) == 7 and all(set(p) == PAPER_KEYS | API_PAPER_KEYS for p in papers)
    assert all(p[key] is None for p in papers for key in API_PAPER_KEYS)  # text dumps leave them null
    upvotes = [p["upvotes"] for p in papers]
    assert upvotes == sorted(upvotes, reverse=True)
    assert upvotes[0] == scalar(db_url, "SELECT max(upvotes) FROM paper") == 6
    since = cli("--db", db_url, "papers", "--since", "2026-11-04", "--json", "--top", "500").json_lines()
    assert since and all(p["first_seen"] >= "2026-11-04" for p in since)
    table = cli("--db", db_url, "papers", "--top", "3")
    assert table.code == 0 and papers[0]["title"][:20] in table.out


def test_backfill_oldest_capture_first_and_idempotent(cli: Any, db_url: str, tmp_path: Path) -> None:
    folder = dated_seeds(tmp_path / "d")
    result = cli("--db", db_url, "backfill", str(folder), "--json")
    assert result.code == 0, result.err
    lines = result.json_lines()
    assert [line["as_of"] for line in lines] == sorted(SEED_AS_OF.values())
    assert sum(line["entries"] for line in lines) == 47 + 50 + 77 + 154 + 75
    before = table(db_url, "paper", order_by="id")
    assert {flag for (flag,) in columns(db_url, "paper", "first_backfill")} == {True}
    again = cli("--db", db_url, "backfill", str(folder), "--json").json_lines()
    assert all(line["duplicate_dump"] for line in again)
    assert table(db_url, "paper", order_by="id") == before


def test_backfill_reports_a_bad_dump_and_goes_on(cli: Any, db_url: str, tmp_path: Path) -> None:
    folder = dated_seeds(tmp_path / "d")
    (folder / "2026-11-01_broken.txt").write_bytes(b"\x00\x01binary")
    result = cli("--db", db_url, "backfill", str(folder), "--json")
    assert result.code == 2
    assert len(result.json_lines()) == 5
    assert "2026-11-01_broken.txt" in result.err and "binary" in result.err


def test_backfill_summary_table(cli: Any, db_url: str, tmp_path: Path) -> None:
    result = cli("--db", db_url, "backfill", str(dated_seeds(tmp_path / "d")))
    assert result.code == 0
    assert "backfill summary" in result.out and "403" in result.out  # 403 entries in all


def test_backfill_progress_bar_on_a_terminal(tmp_path: Path, db_url: str) -> None:
    folder = dated_seeds(tmp_path / "d")
    primary, secondary = pty.openpty()
    env = dict(os.environ, PAPERDIGEST_DB=db_url, TERM="xterm", COLUMNS="100")
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperdigest", "backfill", str(folder)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(primary)
    assert proc.returncode == 0
    assert b"backfill" in seen and b"5/5" in seen  # the bar, counting dumps
    assert b"5/5" not in out  # the bar never pollutes stdout


def test_status(cli: Any, db_url: str) -> None:
    cli("--db", db_url, "ingest", str(SEEDS / "004_d0e4e6143df38525.txt"), "--as-of", "2026-11-04")
    report = cli("--db", db_url, "status", "--json").json_lines()[0]
    assert report["papers"] == report["last_dumps"][0]["new"] > 60
    assert report["dumps"] == 1 and report["last_dumps"][0]["as_of"] == "2026-11-04"
    text = cli("--db", db_url, "status")
    assert text.code == 0 and "papers:" in text.out


def test_store_urls_are_shown_without_password() -> None:

    assert "s3cret" not in display_url("postgresql+psycopg://user:s3cret@localhost/db")


def test_a_bad_store_url_never_echoes_its_password(cli: Any) -> None:
    result = cli("--db", "postgresql+psycopg://reader:s3cret-pw@localhost:notaport/db", "status")
    assert result.code in (1, 2)
    assert "s3cret-pw" not in result.err + result.out
    garbage = cli("--db", "::s3cret-pw::", "status")
    assert garbage.code == 2 and "s3cret-pw" not in garbage.err


def test_backfill_orders_undated_files_by_their_header_dates(cli: Any, db_url: str, tmp_path: Path) -> None:
    """No date in the names: the header dates ('Dec 30', 'Nov 4', ...) order the dumps, with the
    year from the modification time; a dump without a header date falls back to that time."""
    folder = tmp_path / "undated"
    folder.mkdir()
    stamp = 1795435200  # 2026-11-23 12:00 UTC
    for name in SEED_AS_OF:
        shutil.copyfile(SEEDS / name, folder / name)
        os.utime(folder / name, (stamp, stamp))
    lines = cli("--db", db_url, "backfill", str(folder), "--json").json_lines()
    assert [(Path(line["source"]).name[:3], line["as_of"]) for line in lines] == [
        ("000", "2025-12-30"),
        ("001", "2026-03-12"),
        ("002", "2026-11-03"),
        ("004", "2026-11-04"),
        ("003", "2026-11-23"),
    ]


def test_the_readme_lists_every_command_and_option() -> None:
    """The README's command list is checked against the parser, so it cannot leave an option out."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Commands", 1)[1].split("\n- ", 1)[0]
    parser = build_parser()
    assert all(opt in block for action in parser._actions for opt in action.option_strings if opt != "-h")
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        line = next((line for line in block.splitlines() if line.strip().startswith(name + " ")), None)
        assert line is not None, f"the README's command list leaves out {name!r}"
        options = [opt for action in sub._actions for opt in action.option_strings if opt.startswith("--")]
        missing = [opt for opt in options if opt != "--help" and opt not in line]
        assert missing == [], f"{name}: the README leaves out {missing}"


def test_the_readme_fault_table_names_tests_that_exist() -> None:
    """Every row of the README's table of faults names the test that keeps it true."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Faults and bad input", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`tests/" in line]
    assert len(rows) >= 20
    for row in rows:
        reference = re.search(r"`(tests/[\w/]+\.py)::(test_\w+)`", row)
        assert reference is not None, row
        path, name = reference.groups()
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{path}::{name} (named in the README) is gone"
