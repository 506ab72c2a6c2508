"""[limits] max_dump_bytes for local dumps: a file over the cap is refused before it is read, by
`parse`, `ingest`, `backfill` and an inbox alike; the [limits] settings are validated.

Big files here are sparse (truncate): tens of MiB that take no disk, but would take as much
memory, and time, if they were read. tracemalloc shows they are not."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine

from paperdigest import config
from paperdigest.config import MAX_DUMP_BYTES
from paperdigest.errors import ConfigError, ParseError
from paperdigest.ingest import reject
from paperdigest.ingest.job import poll_source
from paperdigest.sources import files
from paperdigest.sources.directory import DirectorySource
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from tests.conftest import SEEDS

SMALL = SEEDS / "000_99135a5897ec12b8.txt"  # 82 705 bytes
LARGE = SEEDS / "004_d0e4e6143df38525.txt"  # 130 446 bytes
CAP = 100_000  # between the two
HUGE = 64 * 2**20
MiB = 2**20


def sparse(path: Path, size: int) -> Path:
    """A file of `size` zero bytes that takes (almost) no disk, dated a minute ago (settled)."""
    with path.open("wb") as handle:
        handle.truncate(size)
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def settled_copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    old = time.time() - 60
    os.utime(target, (old, old))
    return target


def peak_memory(work: Callable[[], Any]) -> tuple[Any, int]:
    """What `work` returned (or raised), and the peak of Python memory it allocated meanwhile."""
    tracemalloc.start()
    try:
        try:
            result: Any = work()
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def limits_config(tmp_path: Path, cap: int, inbox: Path | None = None) -> str:
    path = tmp_path / "limits.toml"
    text = f"[limits]\nmax_dump_bytes = {cap}\n"
    if inbox is not None:
        text += f'[[sources]]\nname = "inbox"\nkind = "directory"\npath = "{inbox}"\nevery = "1m"\n'
        text += f'[mail]\ntransport = "file"\noutbox_dir = "{tmp_path / "out"}"\n'
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def engine(tmp_path: Path, db_url: str) -> Iterator[Engine]:
    eng = open_engine(db_url)
    yield eng
    eng.dispose()


# --- files.read --------------------------------------------------------------------------------


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = sparse(tmp_path / "huge.txt", HUGE)
    started = time.monotonic()
    refused, peak = peak_memory(lambda: files.read(huge, 4096))
    assert time.monotonic() - started < 1.0
    assert peak < MiB  # reading it would take 64 MiB
    assert isinstance(refused, ParseError)
    message = str(refused)
    assert message.startswith(f"{huge}: ")
    assert f"{HUGE} bytes (64.0 MiB) is larger than the cap of 4096 bytes (4.0 KiB)" in message
    assert "raise [limits] max_dump_bytes" in message


def test_a_file_at_the_cap_is_read_and_one_byte_more_is_not(tmp_path: Path) -> None:
    at_cap = tmp_path / "at.txt"
    at_cap.write_bytes(b"x" * 1000)
    assert files.read(at_cap, 1000).data == b"x" * 1000
    over = tmp_path / "over.txt"
    over.write_bytes(b"x" * 1001)
    with pytest.raises(ParseError, match="1001 bytes is larger than the cap of 1000 bytes"):
        files.read(over, 1000)


def test_a_file_that_grows_after_its_size_was_taken_is_refused_past_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fstat said 10 bytes, then the file turned out longer (a writer still at it): reading stops
    one byte past the cap."""
    grown = tmp_path / "grown.txt"
    grown.write_bytes(b"y" * 5000)
    real_fstat = os.fstat
    monkeypatch.setattr(files.os, "fstat", lambda fd: SimpleNamespace(st_size=10, st_mtime=real_fstat(fd).st_mtime))
    with pytest.raises(ParseError, match="grew past the cap of 1000 bytes for a dump while being read"):
        files.read(grown, 1000)
    monkeypatch.undo()
    ten = tmp_path / "ten.txt"
    ten.write_bytes(b"z" * 10)
    assert files.read(ten, 1000).data == b"z" * 10


def test_the_default_cap_is_20_mib(tmp_path: Path, cli: Any) -> None:
    """No config at all: a file one byte over 20 MiB is refused unread by `parse` (exit 2)."""
    assert config.embedded_default().limits.max_dump_bytes == MAX_DUMP_BYTES == 20 * MiB
    over = sparse(tmp_path / "over.txt", 20 * MiB + 1)
    result, peak = peak_memory(lambda: cli("parse", str(over)))
    assert result.code == 2
    assert f"{over}: 20971521 bytes (20.0 MiB) is larger than the cap of 20971520 bytes (20.0 MiB)" in result.err
    assert peak < 4 * MiB


# --- the commands ------------------------------------------------------------------------------


def test_ingest_refuses_a_file_over_the_configured_cap(tmp_path: Path, cli: Any, db_url: str) -> None:
    small = settled_copy(SMALL, tmp_path / "2026-11-03_small.txt")
    large = settled_copy(LARGE, tmp_path / "2026-11-04_large.txt")
    conf = limits_config(tmp_path, CAP)
    refused = cli("--config", conf, "--db", db_url, "ingest", str(small), str(large))
    assert refused.code == 2
    assert f"{large}: {LARGE.stat().st_size} bytes (127.4 KiB) is larger than the cap of {CAP} bytes" in refused.err
    assert "max_dump_bytes" in refused.err
    assert cli("--db", db_url, "papers", "--json").out == ""  # one bad dump refuses them all
    assert cli("--config", conf, "--db", db_url, "ingest", str(small)).code == 0
    raised = limits_config(tmp_path, LARGE.stat().st_size)  # exactly its size: accepted
    assert cli("--config", raised, "--db", db_url, "ingest", str(large)).code == 0


def test_parse_refuses_a_file_over_the_configured_cap(tmp_path: Path, cli: Any) -> None:
    large = settled_copy(LARGE, tmp_path / "large.txt")
    result = cli("--config", limits_config(tmp_path, CAP), "parse", str(large))
    assert result.code == 2 and "larger than the cap of 100000 bytes" in result.err
    assert cli("--config", limits_config(tmp_path, CAP * 2), "parse", str(large)).code == 0


def test_backfill_reports_a_file_over_the_cap_and_goes_on(tmp_path: Path, cli: Any, db_url: str) -> None:
    folder = tmp_path / "dumps"
    folder.mkdir()
    settled_copy(SMALL, folder / "2026-11-03_small.txt")
    huge = sparse(folder / "2026-11-04_huge.txt", HUGE)
    settled_copy(SMALL, folder / "2026-11-05_again.txt")
    conf = limits_config(tmp_path, CAP)
    result, peak = peak_memory(lambda: cli("--config", conf, "--db", db_url, "backfill", str(folder), "--json"))
    assert result.code == 2
    assert [line["source"] for line in result.json_lines()] == [
        str(folder / "2026-11-03_small.txt"),
        str(folder / "2026-11-05_again.txt"),
    ]
    assert f"{huge}: {HUGE} bytes (64.0 MiB) is larger than the cap" in result.err
    assert peak < 16 * MiB  # the huge one is never read, not even to name it for `status`
    status = cli("--config", conf, "--db", db_url, "status", "--json").json_lines()[0]
    assert [r["file"] for r in status["rejected"]] == [str(huge)]


# --- an inbox ----------------------------------------------------------------------------------


def test_an_inbox_rejects_a_file_over_the_cap_and_takes_the_others(tmp_path: Path, engine: Engine) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sparse(inbox / "2026-11-04_huge.txt", HUGE)
    settled_copy(SMALL, inbox / "2026-11-03_small.txt")
    source = DirectorySource("inbox", inbox, max_bytes=CAP)
    started = time.monotonic()
    result, peak = peak_memory(lambda: poll_source(engine, source, dt.datetime.now(dt.UTC)))
    assert time.monotonic() - started < 10
    assert peak < 16 * MiB
    assert len(result.ingested) == 1 and result.ingested[0].entries > 0
    assert [r.file for r in result.rejected] == ["2026-11-04_huge.txt"]
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["2026-11-03_small.txt"]
    rejected = inbox / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == ["2026-11-04_huge.txt", "2026-11-04_huge.txt.error"]
    reason = (rejected / "2026-11-04_huge.txt.error").read_text(encoding="utf-8")
    assert f"{HUGE} bytes (64.0 MiB) is larger than the cap of {CAP} bytes" in reason
    assert "max_dump_bytes" in reason
    assert (rejected / "2026-11-04_huge.txt").stat().st_size == HUGE  # moved, not touched


def test_a_read_only_folder_reports_a_file_over_the_cap_once(tmp_path: Path, engine: Engine) -> None:
    folder = tmp_path / "seeds"
    folder.mkdir()
    large = settled_copy(LARGE, folder / "large.txt")
    source = DirectorySource("seeds", folder, move=False, max_bytes=CAP)
    now = dt.datetime.now(dt.UTC)
    first = poll_source(engine, source, now)
    for rejected in first.rejected:
        reject(engine, rejected)  # as the service does
    assert [r.file for r in first.rejected] == ["large.txt"]
    assert poll_source(engine, source, now).rejected == []  # known: not reported again
    with large.open("ab") as handle:
        handle.write(b"\n")  # another file under the same name: reported again
    assert [r.file for r in poll_source(engine, source, now).rejected] == ["large.txt"]
    assert sorted(p.name for p in folder.iterdir()) == ["large.txt"]
    with engine.connect() as conn:
        assert queries.counts(conn)["dumps"] == 0


def test_the_daemon_takes_the_cap_from_the_config(tmp_path: Path, cli: Any, db_url: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    settled_copy(LARGE, inbox / "2026-11-04_large.txt")
    settled_copy(SMALL, inbox / "2026-11-03_small.txt")
    result = cli("--config", limits_config(tmp_path, CAP, inbox), "--db", db_url, "run", "--once")
    assert result.code == 2, result.out + result.err  # a dump was rejected
    assert "rejected 2026-11-04_large.txt" in result.out and "larger than the cap of 100000 bytes" in result.out
    assert (inbox / "rejected" / "2026-11-04_large.txt.error").exists()
    assert (inbox / "processed" / "2026-11-03_small.txt").exists()


# --- the settings ------------------------------------------------------------------------------


def test_the_limits_have_defaults_and_take_toml_numbers(tmp_path: Path) -> None:
    defaults = config.validate({}, "t").limits
    assert (defaults.max_dump_bytes, defaults.fetch_deadline, defaults.budget) == (20 * MiB, 60.0, 180.0)
    assert config.validate({"limits": {"fetch_deadline": 100}}, "t").limits.budget == 300.0  # 3 x the deadline
    path = tmp_path / "c.toml"
    path.write_text("[limits]\nmax_dump_bytes = 1_000_000\nfetch_deadline = 30\nfetch_budget = 90.5\n")
    limits = config.load(path).limits
    assert (limits.max_dump_bytes, limits.fetch_deadline, limits.budget) == (1_000_000, 30.0, 90.5)


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"max_dump_bytes": 0}, "limits.max_dump_bytes: Input should be greater than 0"),
        ({"max_dump_bytes": -1}, "limits.max_dump_bytes: Input should be greater than 0"),
        ({"max_dump_bytes": "20MiB"}, "limits.max_dump_bytes: Input should be a valid integer"),
        ({"max_dump_bytes": 1.5e6}, "limits.max_dump_bytes: Input should be a valid integer"),
        ({"max_dump_bytes": True}, "limits.max_dump_bytes: Input should be a valid integer"),
        ({"fetch_deadline": 0}, "limits.fetch_deadline: Input should be greater than 0"),
        ({"fetch_deadline": "60s"}, "limits.fetch_deadline: Input should be a valid number"),
        ({"fetch_budget": -1}, "limits.fetch_budget: Input should be greater than 0"),
        (
            {"fetch_deadline": 90, "fetch_budget": 60},
            "limits.fetch_budget (60 s) must be at least limits.fetch_deadline (90 s)",
        ),
        ({"max_bytes": 5}, "limits.max_bytes: unknown key"),
    ],
)
def test_bad_limits_are_refused_with_the_key_path(limits: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.validate({"limits": limits}, "c.toml")
    assert str(caught.value).startswith(f"c.toml: {expected}")
