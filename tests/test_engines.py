"""The two engines store the same thing: one flow (backfill, ingest, digests, mail) run on SQLite and
on PostgreSQL leaves the same rows, and ids past 2**32 go through every table that holds them."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paperdigest.ingest import apply
from paperdigest.model import RawDump
from paperdigest.parse import parse_dump
from paperdigest.store.engine import open_engine
from tests.conftest import FIXTURES, PG_TIMEZONE, ROOT, SEED_AS_OF, SEEDS, PgCluster
from tests.sample import hostile_dump
from tests.storehelp import connect, insert, rows, table

NOW = "2026-11-23T09:00:00+00:00"
TABLES = ("dump", "paper", "sighting", "outbox", "outbox_message", "sent_paper", "source_state", "rejection")


def run_everything(cli: Any, url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Backfill, ingest, refuse a dump, then the daemon's cycle once (an inbox, digests for two
    subscribers by the file transport) and `send` again."""
    workdir.mkdir()
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-01T08:00:00+00:00")
    assert cli("--db", url, "backfill", str(SEEDS / "000_99135a5897ec12b8.txt")).code == 0
    assert cli("--db", url, "backfill", str(FIXTURES / "hf_daily_papers_2023-05.json")).code == 0
    broken = workdir / "2026-11-01_broken.txt"
    broken.write_bytes(b"\x00\x01 not a listing")
    assert cli("--db", url, "ingest", str(broken)).code == 2
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-22T08:00:00+00:00")
    engine = open_engine(url)
    for seed, as_of in sorted(SEED_AS_OF.items(), key=lambda item: item[1])[1:]:
        path = SEEDS / seed
        apply(engine, parse_dump(RawDump(str(path), path.read_bytes()), dt.date.fromisoformat(as_of)))
    engine.dispose()
    inbox = workdir / "inbox"
    inbox.mkdir()
    (inbox / "2026-11-22_hostile.txt").write_bytes(hostile_dump())
    settled = dt.datetime.fromisoformat(NOW).timestamp() - 60  # written a minute before the run: done
    os.utime(inbox / "2026-11-22_hostile.txt", (settled, settled))
    config = workdir / "c.toml"
    config.write_text(
        f'[[sources]]\nname = "inbox"\nkind = "directory"\npath = "{inbox}"\nevery = "1h"\n'
        '[topics.agents]\nkeywords = ["agent", "GUI"]\n[topics.robotics]\nkeywords = ["robot"]\n'
        f'[mail]\ntransport = "file"\noutbox_dir = "{workdir / "out"}"\n'
        '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["agents"]\n'
        '[[subscribers]]\nemail = "grace@example.org"\ntopics = ["robotics", "agents"]\nmin_score = 1.5\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW)
    assert cli("--config", str(config), "--db", url, "run", "--once").code == 0
    assert (inbox / "processed" / "2026-11-22_hostile.txt").exists()
    assert cli("--config", str(config), "--db", url, "send").code == 0  # nothing new: nothing written
    return {name: table(url, name) for name in TABLES}


def test_the_same_flow_stores_the_same_rows_on_both_engines(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_cluster: PgCluster
) -> None:
    """Every value typed as the code reads it (dates, booleans, moments in UTC, message bytes)."""
    work = tmp_path / "run"  # the same folder for both runs: the stores record file names
    on_sqlite = run_everything(cli, f"sqlite:///{tmp_path / 'papers.db'}", work, monkeypatch)
    work.rename(tmp_path / "run-on-sqlite")
    name, url = pg_cluster.create()
    try:
        on_postgresql = run_everything(cli, url, work, monkeypatch)
    finally:
        pg_cluster.drop(name)
    assert all(on_sqlite[name] for name in TABLES)  # every table took part
    assert len(on_sqlite["outbox"]) == 2 and {row[0] for row in on_sqlite["outbox_message"]} == {1, 2}
    for name in TABLES:
        assert on_postgresql[name] == on_sqlite[name], name


BIG = 2**32 + 7


def ids_from(url: str, engine_name: str, first: int) -> None:
    """Make the next id of dump, paper and outbox rows `first` or more."""
    if engine_name == "postgresql":
        with connect(url) as conn:
            for name in ("dump", "paper", "outbox"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {first})")
        return
    # SQLite gives a new row the largest rowid plus one: leave a row at `first` in each table.
    moment, day = dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.date(2020, 1, 1)
    counts = {"entries": 0, "new": 0, "updated": 0, "unchanged": 0, "backfill": True, "status": "ingested"}
    dump = {"id": first, "content_hash": "h", "source": "s", "as_of": day, "layout": "full", "ingested_at": moment}
    insert(url, "dump", dump | counts)
    paper = {"id": first, "title_key": "placeholder", "title": "Placeholder", "first_seen": day, "last_seen": day}
    insert(url, "paper", paper | {"first_dump_id": first, "first_ingested_at": moment, "first_backfill": True})
    outbox = {"id": first, "subscriber": "x@example.org", "period": moment, "window_start": moment}
    times = {"window_end": moment, "created_at": moment, "next_attempt_at": moment}
    insert(url, "outbox", outbox | times | {"status": "empty", "attempts": 0, "message_id": "<x>", "subject": "s"})


def test_ids_past_2_to_the_32_go_through_every_table(
    cli: Any, db_url: str, engine_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_engine(db_url).dispose()
    ids_from(db_url, engine_name, BIG)
    stored = run_everything(cli, db_url, tmp_path / "run", monkeypatch)
    assert min(row[0] for row in stored["dump"] if row[0] != BIG) == BIG + 1
    assert all(row[0] > BIG for row in stored["sighting"]) and all(row[1] > BIG for row in stored["sighting"])
    assert all(row[1] > BIG for row in stored["sent_paper"]) and stored["sent_paper"]
    sent = [row for row in stored["outbox"] if row[0] > BIG]
    assert len(sent) == 2 and all(int(pid) > BIG for row in sent for pid in json.loads(row[-1]))
    assert {row[0] for row in stored["outbox_message"]} == {row[0] for row in sent}
    assert cli("--db", db_url, "papers", "--top", "3", "--json").code == 0


def test_the_store_fixture_gives_each_test_its_own_store(new_store: Callable[..., str], engine_name: str) -> None:
    first, second = new_store(), new_store()
    assert first != second
    open_engine(first).dispose()
    insert(first, "source_state", {"name": "only-here", "failures": 0})
    open_engine(second).dispose()
    assert table(second, "source_state") == []
    if engine_name == "postgresql":  # a session zone far from UTC, and a language's collation
        assert rows(first, "SHOW TimeZone") == [(PG_TIMEZONE,)]
        assert rows(first, "SELECT datlocprovider FROM pg_database WHERE datname = current_database()") == [("i",)]


def test_papers_with_the_same_votes_and_day_are_ordered_by_title_alike_on_both_engines(
    cli: Any, db_url: str, tmp_path: Path
) -> None:
    """By the titles' code points, as Python and SQLite order text, whatever the server's collation."""
    titles = ["alpha paper", "Beta paper", "_gamma paper", "Delta paper", "éclair paper"]
    dump = "new\n\nSubscribe\n\nDaily Papers\n\nNov 4\n\n" + "".join(
        f"{title}\n\nAn abstract of {title}.\n\n  • 2 authors\n·\nNov 1 5\n\n" for title in titles
    )
    path = tmp_path / "2026-11-04_ties.txt"
    path.write_text(dump, encoding="utf-8")
    assert cli("--db", db_url, "ingest", str(path)).code == 0
    listed = [line["title"] for line in cli("--db", db_url, "papers", "--json").json_lines()]
    assert listed == sorted(titles)


def _pytest_without_a_server(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PAPERDIGEST_TEST_PG", "PAPERDIGEST_REQUIRE_PG")}
    env["PAPERDIGEST_PG_BIN"] = str(tmp_path / "no-postgresql-here")
    if require:
        env["PAPERDIGEST_REQUIRE_PG"] = "1"
    test = "tests/test_engines.py::test_the_store_fixture_gives_each_test_its_own_store"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_without_a_server_the_postgresql_half_is_skipped_and_says_how_to_get_one(tmp_path: Path) -> None:
    result = _pytest_without_a_server(tmp_path, require=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert "apt-get install postgresql" in result.stdout and "PAPERDIGEST_TEST_PG" in result.stdout
    assert "PostgreSQL half: SKIPPED (1 skipped): PostgreSQL's server binaries" in result.stdout


def test_without_a_server_the_postgresql_half_fails_when_required(tmp_path: Path) -> None:
    result = _pytest_without_a_server(tmp_path, require=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout and "PAPERDIGEST_REQUIRE_PG=1" in result.stdout


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://u@127.0.0.1/x", "mysql is not supported: the store is SQLite (sqlite:///PATH) or PostgreSQL"),
        ("oracle://u@127.0.0.1/x", "oracle is not supported"),
        ("postgresql+psycopg2://u@127.0.0.1/x", "pip install 'paperdigest[postgresql]'"),
        ("not a url", "not a database URL"),
    ],
)
def test_a_store_url_we_cannot_use_is_one_line_and_exit_2(cli: Any, url: str, says: str) -> None:
    result = cli("--db", url, "status")
    assert result.code == 2 and says in result.err, result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
