"""Migrations (Alembic): a store made by 0.1.0 is recognised and upgraded in place, keeping every
row; the models and the migrations agree; outdated and newer stores are refused in one line."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from paperdigest.store import migrate
from paperdigest.store.engine import open_engine
from paperdigest.store.tables import metadata
from tests import legacy
from tests.conftest import run_subprocess

NOW = "2026-11-23T12:00:00+00:00"  # the 0.1.0 run sent demo@localhost the digest of 2026-11-23 07:00Z


@pytest.fixture
def old_store(tmp_path: Path) -> tuple[str, dict[str, int]]:
    url = f"sqlite:///{tmp_path / 'papers.db'}"
    return url, legacy.make_store(url)


def test_a_0_1_0_store_is_refused_until_upgraded(cli: Any, old_store: tuple[str, dict[str, int]]) -> None:
    url, _ = old_store
    for command in (["status"], ["papers"], ["send"], ["ingest", "seeds"]):
        result = cli("--db", url, *command)
        assert result.code == 1, command
        assert "paperdigest db upgrade" in result.err and len(result.err.strip().splitlines()) == 1
    current = cli("--db", url, "db", "current")
    assert current.code == 0 and "0.1.0" in current.out and "db upgrade" in current.out


def test_db_upgrade_keeps_every_row_and_is_idempotent(cli: Any, old_store: tuple[str, dict[str, int]]) -> None:
    url, made = old_store
    first = cli("--db", url, "db", "upgrade")
    assert first.code == 0 and f"from 0.1.0 to schema revision {migrate.head()}" in first.out
    assert legacy.counts(url) == made
    again = cli("--db", url, "db", "upgrade")
    assert again.code == 0 and "already" in again.out
    assert cli("--db", url, "db", "current").out.strip() == f"{migrate.head()} (the newest)"
    papers = cli("--db", url, "papers", "--top", "500", "--json").json_lines()
    assert len(papers) == made["paper"]


def test_run_upgrades_at_start_and_goes_on_without_repeating_a_digest(
    old_store: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """The embedded default (seeds, demo@localhost) on the store 0.1.0 left: the seeds are known
    by their hashes, the digest of the period was sent, so nothing is ingested or mailed again."""
    url, made = old_store
    env = {"STATE_DIRECTORY": str(tmp_path / "state"), "PAPERDIGEST_NOW": NOW}
    result = run_subprocess("--db", url, "run", "--once", env=env)
    assert result.code == 0, result.out + result.err
    assert legacy.counts(url) == made
    outbox = tmp_path / "state" / "outbox"
    assert not outbox.exists() or not list(outbox.glob("*.eml"))
    later = run_subprocess("--db", url, "run", "--once", env={**env, "PAPERDIGEST_NOW": "2026-11-24T12:00:00+00:00"})
    assert later.code == 0
    # The next period: nothing new since the 0.1.0 digest's window (the seeds are known), so an
    # empty period is recorded and nothing is mailed.
    assert not outbox.exists() or not list(outbox.glob("*.eml"))
    assert legacy.counts(url)["outbox"] == made["outbox"] + 1


def test_an_empty_store_is_created_at_the_newest_revision(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()


# Expression indexes cannot be reflected, so autogenerate skips them: checked by name below.
EXPRESSION_INDEX = pytest.mark.filterwarnings("ignore:.*expression-based index")


def expression_indexes(conn: Any) -> set[str]:
    rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%coalesce%'")
    return {row[0] for row in rows}


@EXPRESSION_INDEX
def test_the_models_and_the_migrations_agree(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert expression_indexes(conn) == {"uq_paper_title_key_arxiv"}
    assert differences == []


@EXPRESSION_INDEX
def test_an_upgraded_0_1_0_store_has_the_schema_of_a_new_one(cli: Any, old_store: tuple[str, dict[str, int]]) -> None:
    url, _ = old_store
    assert cli("--db", url, "db", "upgrade").code == 0
    engine = create_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert expression_indexes(conn) == {"uq_paper_title_key_arxiv"}


def test_a_store_from_a_newer_release_is_refused(cli: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    open_engine(url).dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    for command in (["status"], ["db", "upgrade"]):
        result = cli("--db", url, *command)
        assert result.code == 1 and "newer release" in result.err


def test_the_migrations_ship_in_the_package() -> None:

    versions = importlib.resources.files("paperdigest.store") / "migrations" / "versions"
    names = sorted(p.name for p in versions.iterdir() if p.name.endswith(".py") and p.name[0].isdigit())
    assert names[0].startswith("0001") and len(names) >= 2
    assert os.path.basename(str(importlib.resources.files("paperdigest.store") / "migrations" / "env.py"))
