"""Start-up (issue 13): a command imports what it needs. `--version` starts without SQLAlchemy or
pydantic; `status` without Alembic, Jinja2, httpx, rich or the web side, nor SQLModel and
SQLAlchemy's ORM: it reads the store through SQLAlchemy Core on tables reflected from the store
(store/status.py), never through the SQLModel classes of store/tables.py. Checked by the modules a
real process imported (`python -X importtime`), so a top-level import added anywhere on these paths
fails here rather than silently costing every command. Times are the benchmark's (benchmarks/bench.py,
"start-up"), never asserted here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from paperdigest.store import migrate

NEVER_FOR_VERSION = ("sqlalchemy", "pydantic", "alembic", "jinja2", "httpx", "apscheduler", "rich", "sqlmodel")
NEVER_FOR_STATUS = ("alembic", "jinja2", "httpx", "rich", "uvicorn", "starlette", "markupsafe", "sqlmodel")
# Modules within packages `status` does import: the ORM (SQLModel's base) and our SQLModel tables
# and the queries built on them (store/status.py reads for status instead).
NEVER_FOR_STATUS_MODULES = ("sqlalchemy.orm", "paperdigest.store.tables", "paperdigest.store.queries",
                            "paperdigest.model")


def imported(args: list[str], tmp_path: Path, modules: bool = False) -> set[str]:
    """The top-level packages a `python -m paperdigest ARGS` process imported (with `modules`: every
    module, by its full name)."""
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path / "state"), "PAPERDIGEST_DB": f"sqlite:///{tmp_path}/s.db"}
    env.pop("PAPERDIGEST_CONFIG", None)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "paperdigest", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # status exits 1 on an unhealthy store
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            names.add(name if modules else name.split(".")[0])
    assert "paperdigest" in names or "paperdigest.cli" in names  # the listing was read
    return names


def test_version_imports_neither_sqlalchemy_nor_pydantic(tmp_path: Path) -> None:
    found = imported(["--version"], tmp_path)
    assert found.isdisjoint(NEVER_FOR_VERSION), sorted(found & set(NEVER_FOR_VERSION))


def test_help_imports_no_store(tmp_path: Path) -> None:
    found = imported(["--help"], tmp_path)
    assert found.isdisjoint(NEVER_FOR_VERSION), sorted(found & set(NEVER_FOR_VERSION))


def test_status_on_an_up_to_date_store_imports_no_alembic_nor_renderers(tmp_path: Path) -> None:
    imported(["status"], tmp_path)  # the first one creates the store (Alembic migrates it)
    found = imported(["status"], tmp_path)
    assert "sqlalchemy" in found  # it did read the store
    assert found.isdisjoint(NEVER_FOR_STATUS), sorted(found & set(NEVER_FOR_STATUS))
    found = imported(["status", "--json"], tmp_path)
    assert found.isdisjoint(NEVER_FOR_STATUS), sorted(found & set(NEVER_FOR_STATUS))


def test_status_imports_neither_the_orm_nor_the_sqlmodel_tables(tmp_path: Path) -> None:
    imported(["status"], tmp_path)  # creates the store
    found = imported(["status"], tmp_path, modules=True)
    assert "paperdigest.store.status" in found  # it did read the store, the light way
    assert not {m for m in found if m.startswith(NEVER_FOR_STATUS_MODULES)}, sorted(
        m for m in found if m.startswith(NEVER_FOR_STATUS_MODULES))


def test_the_revision_files_name_alembics_head() -> None:
    """What an open store is compared with, without Alembic, is Alembic's own newest revision."""
    migrate.newest_named.cache_clear()
    assert migrate.newest_named() == migrate.head()
