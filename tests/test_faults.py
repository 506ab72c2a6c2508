"""Faults from outside: a full disk, one store reached by several paths, a file still being written."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from paperdigest.errors import ParseError
from paperdigest.ingest import job
from paperdigest.ingest.job import poll_source
from paperdigest.mail.files import FileTransport
from paperdigest.model import RawDump
from paperdigest.parse import parse_dump
from paperdigest.service.lock import AlreadyRunning, InstanceLock, lock_path
from paperdigest.sources.directory import DirectorySource
from paperdigest.sources.http import HttpSource
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from tests.conftest import ROOT, SEEDS, run_subprocess
from tests.privileges import without_root_override
from tests.storehelp import connect, snapshot


@pytest.mark.sqlite_only  # a PostgreSQL store's leader lock is an advisory lock, no file (tests/test_replicas.py)
def test_a_full_disk_at_the_lock_is_one_line_not_a_traceback(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/dev/full answers every write with ENOSPC: the lock's pid write meets a full disk. (The lock
    of a SQLite store is beside it, papers.db.lock; a server's is in the state directory.)"""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "s"))
    lock = lock_path(db_url)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.symlink_to("/dev/full")
    for args in (["run", "--once"], ["run"]):
        result = run_subprocess("--db", db_url, *args, env={"STATE_DIRECTORY": str(tmp_path / "s")})
        assert result.code == 1, result.err
        assert "Traceback" not in result.err
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0] and lock.name in lines[0]


# One SQLite file reached by several paths: a question of file names, not for a server.
@pytest.mark.parametrize("how", ["symlink", "dotdot"])
def test_one_instance_per_store_whatever_the_path(tmp_path: Path, how: str) -> None:
    (tmp_path / "data").mkdir()
    store = tmp_path / "data" / "papers.db"
    if how == "symlink":
        other = tmp_path / "alias.db"
        other.symlink_to(store)
    else:
        (tmp_path / "elsewhere").mkdir()
        other = tmp_path / "elsewhere" / ".." / "data" / "papers.db"
    assert lock_path(f"sqlite:///{other}") == lock_path(f"sqlite:///{store}")
    with InstanceLock(lock_path(f"sqlite:///{store}")):
        with pytest.raises(AlreadyRunning), InstanceLock(lock_path(f"sqlite:///{other}")):
            pass
        second = run_subprocess(
            "--db", f"sqlite:///{other}", "run", "--once", env={"STATE_DIRECTORY": str(tmp_path / "s")}
        )
        assert second.code == 1 and "already running" in second.err
    assert os.path.realpath(other) == str(store)


# --- a file still being written ---------------------------------------------------------------------

SEED = SEEDS / "004_d0e4e6143df38525.txt"


def _partial_cut(whole: bytes, parses: bool) -> int:
    """An offset where the writer paused: the first half parses (or, with parses=False, does not)."""
    for cut in range(len(whole) // 3, len(whole) - 1):
        if whole[cut : cut + 2] != b"\n\n":
            continue
        try:
            parse_dump(RawDump("x.txt", whole[:cut], None), dt.date(2026, 11, 4))
        except ParseError:
            if not parses:
                return cut
            continue
        if parses:
            return cut
    raise AssertionError("no such cut in the seed")


@pytest.mark.parametrize("first_half_parses", [True, False])
def test_a_file_still_being_written_is_not_ingested_half(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    first_half_parses: bool,
    db_url: str,
) -> None:
    """The writer pauses longer than the settle time, the poll reads the first part, and the writer
    goes on while that part is being ingested (or refused): the file stays for a later poll,
    which takes it whole."""
    engine = open_engine(db_url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    whole = SEED.read_bytes()
    cut = _partial_cut(whole, first_half_parses)
    target = inbox / "2026-11-04_growing.txt"
    target.write_bytes(whole[:cut])
    old = time.time() - 60
    os.utime(target, (old, old))

    step = "apply" if first_half_parses else "parse_dump"
    real = getattr(job, step)

    def writer_goes_on(*args: Any, **kwargs: Any) -> Any:
        if target.stat().st_size == cut:
            with target.open("ab") as handle:
                handle.write(whole[cut:])
        return real(*args, **kwargs)

    monkeypatch.setattr(job, step, writer_goes_on)
    source = DirectorySource("inbox", inbox)
    now = dt.datetime.now(dt.UTC)
    with caplog.at_level(logging.WARNING, logger="paperdigest.sources"):
        first = poll_source(engine, source, now)
    assert first.waiting == [target.name] and first.rejected == []
    assert target.exists() and not (inbox / "rejected").exists() and not (inbox / "processed").exists()
    assert "changed after it was read" in caplog.text

    polls = [poll_source(engine, source, now + dt.timedelta(seconds=5 * i)) for i in (1, 2)]
    assert sum(len(p.ingested) for p in polls) == 1 and all(p.rejected == [] for p in polls)
    assert (inbox / "processed" / target.name).read_bytes() == whole
    entries = parse_dump(RawDump("x", whole, None), dt.date(2026, 11, 4)).entries
    with engine.connect() as conn:
        assert queries.counts(conn)["papers"] == len(entries)



def test_run_once_takes_a_file_dropped_just_before_it(tmp_path: Path, db_url: str) -> None:
    """`run --once` right after a dump is dropped into the inbox: within its one cycle it polls the
    folder again after the settle time, and takes the file if it has not changed meanwhile (it used
    to say "1 still being written" and leave it for a next run). The file's time is set ahead, so
    the first poll always finds it too young, however long the process takes to start."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[sources]]\nname = "inbox"\nkind = "directory"\npath = "{inbox}"\nevery = "15m"\n'
        f'[mail]\ntransport = "file"\noutbox_dir = "{tmp_path / "outbox"}"\n',
        encoding="utf-8",
    )
    dropped = inbox / "2026-11-04_dropped.txt"
    dropped.write_bytes(SEED.read_bytes())
    ahead = time.time() + 30
    os.utime(dropped, (ahead, ahead))
    result = run_subprocess("--config", str(config), "--db", db_url, "run", "--once")
    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[0] == "source inbox: 1 new dump (75 entries, 75 new papers), 0 already ingested"
    assert (inbox / "processed" / dropped.name).read_bytes() == SEED.read_bytes()

# --- private by default -------------------------------------------------------------------------------


@pytest.fixture
def umask_022() -> Any:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# SQLite's files and their modes (a server keeps its own files).
def test_the_store_and_its_wal_are_readable_by_the_owner_only(tmp_path: Path, umask_022: Any) -> None:
    store = tmp_path / "state" / "deep" / "papers.db"
    engine = open_engine(f"sqlite:///{store}")
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        conn.exec_driver_sql("INSERT INTO source_state (name, failures) VALUES ('x', 0)")
        wal, shm = store.with_name("papers.db-wal"), store.with_name("papers.db-shm")
        assert wal.exists() and shm.exists()
        assert (mode(store), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    assert mode(store.parent) == mode(store.parent.parent) == 0o700
    engine.dispose()


def test_the_outbox_and_the_archive_are_private(tmp_path: Path, umask_022: Any) -> None:

    outbox = tmp_path / "state" / "outbox"
    with FileTransport(outbox) as transport:
        message = b"To: a@x.org\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n"
        transport.send(sender="d@x.org", recipient="a@x.org", message=message, name="m")
    assert mode(outbox) == 0o700 and mode(outbox.parent) == 0o700
    assert {p.name: mode(p) for p in outbox.iterdir()} == {"m.eml": 0o600, "m.html": 0o600}
    archived = HttpSource("api", "http://127.0.0.1/", archive=tmp_path / "archive" / "api").archive_body(
        b"[]", "application/json", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )
    assert mode(archived) == 0o600 and mode(archived.parent) == mode(archived.parent.parent) == 0o700


def test_run_warns_about_a_world_readable_password_file(tmp_path: Path, db_url: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text("pw\n")
    secret.chmod(0o644)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[mail]\nfrom = "D <d@example.org>"\ntransport = "smtp"\nhost = "127.0.0.1"\nport = 9\n'
        f'username = "u"\npassword_file = "{secret}"\n',
        encoding="utf-8",
    )
    result = run_subprocess(
        "--config", str(config), "--db", db_url, "run", "--once",
        env={"STATE_DIRECTORY": str(tmp_path / "s")},
    )  # fmt: skip
    assert result.code == 0, result.err
    assert f"mail.password_file {secret} is world-readable" in result.err and "pw" not in result.err.split()


def test_a_read_only_store_is_one_line_and_keeps_what_it_holds(tmp_path: Path, db_url: str, engine_name: str) -> None:
    """SQLite: a file and a folder without write permission; PostgreSQL: a database whose
    transactions are read-only."""
    assert run_subprocess("--db", db_url, "ingest", str(SEED), "--as-of", "2026-11-04").code == 0
    before = snapshot(db_url)
    command = [sys.executable, "-m", "paperdigest", "--db", db_url, "ingest", str(SEEDS / "002_35bc1272005cc0d3.txt")]
    with read_only(db_url, engine_name):
        result = subprocess.run(
            without_root_override(command), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "readonly" in result.stderr.replace("-", "").replace(" ", "").lower()
    assert snapshot(db_url) == before


@contextmanager
def read_only(url: str, engine_name: str) -> Iterator[None]:
    if engine_name == "postgresql":
        name = make_url(url).database
        with connect(url) as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        try:
            yield
        finally:
            with connect(url) as conn:
                conn.exec_driver_sql("SET TRANSACTION READ WRITE")  # this one, to undo it
                conn.exec_driver_sql(f"ALTER DATABASE {name} RESET default_transaction_read_only")
        return
    store = Path(url.removeprefix("sqlite:///"))
    store.chmod(0o444)
    store.parent.chmod(0o555)  # no journal or WAL files can be made either
    try:
        yield
    finally:
        store.parent.chmod(0o755)
        store.chmod(0o644)
