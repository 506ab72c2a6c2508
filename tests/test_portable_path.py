"""The store's portable path (plain SQLAlchemy Core: what PostgreSQL runs) against the SQLite
fast path, on real SQLite files: the same ingest, backfill, digests and mail leave the same rows."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from paperdigest.ingest import apply
from paperdigest.model import RawDump
from paperdigest.parse import parse_dump
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from tests.conftest import FIXTURES, SEED_AS_OF, SEEDS

NOW = "2026-11-23T09:00:00+00:00"
TABLES = ("dump", "paper", "sighting", "outbox", "outbox_message", "sent_paper")


def run_everything(cli: Any, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    db = tmp_path / f"{name}.db"
    url = f"sqlite:///{db}"
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-01T08:00:00+00:00")
    assert cli("--db", url, "backfill", str(SEEDS / "000_99135a5897ec12b8.txt")).code == 0
    assert cli("--db", url, "backfill", str(FIXTURES / "hf_daily_papers_2023-05.json")).code == 0
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-22T08:00:00+00:00")

    engine = open_engine(url)
    for seed, as_of in sorted(SEED_AS_OF.items(), key=lambda item: item[1])[1:]:
        path = SEEDS / seed
        apply(engine, parse_dump(RawDump(str(path), path.read_bytes()), dt.date.fromisoformat(as_of)))
    engine.dispose()
    config = tmp_path / f"{name}.toml"
    config.write_text(
        '[topics.agents]\nkeywords = ["agent", "GUI"]\n[topics.robotics]\nkeywords = ["robot"]\n'
        f'[mail]\ntransport = "file"\noutbox_dir = "{tmp_path / name}"\n'
        '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["agents"]\n'
        '[[subscribers]]\nemail = "grace@example.org"\ntopics = ["robotics", "agents"]\nmin_score = 1.5\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW)
    assert cli("--config", str(config), "--db", url, "send").code == 0
    assert cli("--config", str(config), "--db", url, "send").code == 0  # nothing new: nothing written
    conn = sqlite3.connect(db)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in TABLES}
    finally:
        conn.close()


def test_the_portable_path_stores_what_the_fast_path_stores(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = run_everything(cli, tmp_path, "fast", monkeypatch)
    monkeypatch.setattr(queries._sql, "FAST_SQLITE", False)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        portable = run_everything(cli, tmp_path, "portable", monkeypatch)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    # SQLite hands out an id for a NULL primary key; PostgreSQL refuses it: ids are never sent.
    inserts = [s for s in statements if s.startswith("INSERT INTO paper ")]
    assert inserts and not any(s.startswith("INSERT INTO paper (id") for s in inserts), inserts[:1]
    assert all(fast[table] for table in TABLES)  # every table took part
    assert len(fast["outbox"]) == 2 and {row[0] for row in fast["outbox_message"]} == {1, 2}
    for table in TABLES:
        assert portable[table] == fast[table], table
