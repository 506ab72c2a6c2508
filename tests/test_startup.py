"""Start-up (issue 13): a command imports what it needs. `--version` starts without SQLAlchemy or
pydantic; `status` without Alembic, Jinja2, httpx, rich, APScheduler or the web side, nor SQLModel and
SQLAlchemy's ORM: it reads the store through SQLAlchemy Core on tables reflected from the store
(store/status.py), never through the SQLModel classes of store/tables.py. Checked by the modules a
real process imported (`python -X importtime`), so a top-level import added anywhere on these paths
fails here rather than silently costing every command. Times are the benchmark's (benchmarks/bench.py,
"start-up"), never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from paperdigest.store import migrate

NEVER_FOR_VERSION = ("sqlalchemy", "pydantic", "alembic", "jinja2", "httpx", "apscheduler", "rich", "sqlmodel")
# APScheduler: the config's cron check and `status`'s next runs use our crontab trigger, which only
# the daemon's module (service/scheduler.py) registers with APScheduler.
NEVER_FOR_STATUS = ("alembic", "jinja2", "httpx", "rich", "uvicorn", "starlette", "markupsafe", "sqlmodel",
                    "apscheduler")
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


def test_the_command_tunes_the_collector_for_its_process_and_main_leaves_a_hosts_alone() -> None:
    """`paperdigest` (the console script and `python -m paperdigest`) collects every 10,000
    allocations instead of 700: start-up's long-lived objects are not walked dozens of times."""
    code = (
        "import gc, sys\n"
        "from paperdigest import cli\n"
        "before = gc.get_threshold()\n"
        "try:\n"
        "    cli.main(['status', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert gc.get_threshold() == before, 'main() changed the host collector'\n"
        "sys.argv = ['paperdigest', '--version']\n"
        "try:\n"
        "    cli.console()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.get_threshold() == cli.GC_THRESHOLD)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"
    script = Path(sys.executable).with_name("paperdigest")
    assert "console()" in script.read_text(encoding="utf-8")  # the installed command goes through console()
    main_module = Path(migrate.__file__).parents[1] / "__main__.py"
    assert "console()" in main_module.read_text(encoding="utf-8")


def test_status_in_a_process_of_its_own_runs_without_the_collector_nor_the_teardown(tmp_path: Path) -> None:
    """`paperdigest status` (console()) turns the cyclic collector off (its read is bounded) and
    ends without the interpreter's teardown: the exit handlers still run, the output is whole, the
    exit code is status's own. Other commands keep the collector and return from console() (a
    backfill or `papers --topic` on a large store needs it), and main() called by a host program
    leaves the host's collector alone and returns to it, `status` included."""
    env = {**os.environ, "STATE_DIRECTORY": str(tmp_path / "state"), "PAPERDIGEST_DB": f"sqlite:///{tmp_path}/s.db"}
    env.pop("PAPERDIGEST_CONFIG", None)
    code = (
        "import atexit, contextlib, gc, io, sys\n"
        "from paperdigest import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['db', 'upgrade'])\n"  # creates the store
        "    hosted = cli.main(['status'])\n"  # in-process: returns, the collector kept
        "    sys.argv = ['paperdigest', 'db', 'current']\n"
        "    other = cli.console()\n"
        "print('hosted', hosted in (0, 1), 'other', other, gc.isenabled())\n"
        "atexit.register(lambda: print('at exit', gc.isenabled()))\n"
        "sys.argv = ['paperdigest', 'status', '--json']\n"
        "cli.console()\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # status's own verdict
    lines = done.stdout.splitlines()
    assert lines[0] == "hosted True other 0 True"
    report = json.loads(lines[-2])  # status's whole output, flushed before the exit handler's line
    assert report["healthy"] is (done.returncode == 0)
    assert lines[-1] == "at exit False"  # the handler ran, with the collector off
    assert "not reached" not in done.stdout


def test_the_command_skips_pydantics_plugin_search_unless_told_otherwise() -> None:
    """console() sets PYDANTIC_DISABLE_PLUGINS (pydantic then reads no distribution's entry points
    when the config's models are built); a value already given, even empty, is kept; main() called
    by a host program sets nothing."""
    code = (
        "import os, sys\n"
        "from paperdigest import cli\n"
        "try:\n"
        "    cli.main(['status', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('env', repr(os.environ.get('PYDANTIC_DISABLE_PLUGINS')))\n"
        "sys.argv = ['paperdigest', '--version']\n"
        "try:\n"
        "    cli.console()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('env', repr(os.environ.get('PYDANTIC_DISABLE_PLUGINS')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    for given, expected in ((None, ["None", "'__all__'"]), ("", ["''", "''"]), ("logfire", ["'logfire'", "'logfire'"])):
        run_env = env if given is None else {**env, "PYDANTIC_DISABLE_PLUGINS": given}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=run_env, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        assert [line[4:] for line in done.stdout.splitlines() if line.startswith("env ")] == expected, given
