"""Bad input through the CLI: every rejected dump exits 2 with one line naming the file (and the line
where there is one), prints nothing on stdout, and leaves the store exactly as it was."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from tests import storehelp
from tests.conftest import SEED_AS_OF, SEEDS

SEED_000 = "000_99135a5897ec12b8.txt"
SEED_001 = "001_3e4a064d45c80381.txt"
SEED_003 = "003_00886173680504fb.txt"
TABLES = ("paper", "dump", "sighting")


def seed(name: str = SEED_000) -> bytes:
    return (SEEDS / name).read_bytes()


def _cut_after_line(data: bytes, line: bytes, keep_line: bool = True) -> bytes:
    lines = data.split(b"\n")
    index = lines.index(line)
    return b"\n".join(lines[: index + 1 if keep_line else index]) + b"\n"


def _without_line(data: bytes, line: bytes) -> bytes:
    lines = data.split(b"\n")
    del lines[lines.index(line)]
    return b"\n".join(lines)


def _line_of(data: bytes, needle: bytes) -> int:
    return data[: data.index(needle)].count(b"\n") + 1


_LATIN1_LISTING = "new\n\nSubscribe\n\nDaily Papers\n\nDec 30\n\nPokéChamp: an Agent\n\nAn abstract.\n"
_PYTHON = 'import os\n\n\ndef main():\n    print("hi")\n\n\nif __name__ == "__main__":\n    main()\n'

# name -> (file name, bytes, the line the message must name or None)
BAD: dict[str, tuple[str, Callable[[], bytes], int | None]] = {
    "empty": ("empty.txt", lambda: b"", None),
    "whitespace-only": ("blank.txt", lambda: b"  \n\n\t \r\n \n", None),
    "binary": ("binary.txt", lambda: b"new\n\nDaily Papers\n\x89PNG\x00\x00\x01\x02\xff", 4),
    "utf16-without-bom": ("utf16.txt", lambda: seed().decode().encode("utf-16-le"), None),
    "python-source": ("script.py", _PYTHON.encode, None),
    "csv": ("papers.csv", lambda: b"title,upvotes\nfoo,1\nbar,2\n", None),
    "csv-even-lines": ("papers2.csv", lambda: b"title,upvotes\nfoo,1\nbar,2\nbaz,3\n", None),
    "paragraphs": ("notes.txt", lambda: b"The quick brown fox.\n\nJumps over the lazy dog.\n", None),
    "one-paragraph": ("note.txt", lambda: b"Just one paragraph of text.\n", None),
    "full-cut-after-title": (
        "cut-title.txt",
        lambda: _cut_after_line(seed(), b"Training AI Co-Scientists Using Rubric Rewards"),
        341,
    ),
    "pairs-cut-after-title": ("cut-pairs.txt", lambda: seed(SEED_001).rstrip(b"\n").rsplit(b"\n", 1)[0], 207),
    "dense-cut-after-title": ("cut-dense.txt", lambda: seed(SEED_003).rsplit(b"\n", 1)[0], 309),
    "meta-cut-before-date": ("cut-meta.txt", lambda: _cut_after_line(seed(), b"Dec 29 1", keep_line=False), 345),
    "meta-without-date-mid-file": ("meta-nodate.txt", lambda: _without_line(seed(), b"Dec 29 1"), 345),
    "meta-cut-inside-date": ("cut-date.txt", lambda: seed().rstrip(b"\n")[:-2], 371),
    "cut-inside-utf8-character": ("cut-utf8.txt", lambda: seed()[: seed().index("•".encode()) + 1], 17),
    "latin1": ("latin1.txt", lambda: _LATIN1_LISTING.encode("latin-1"), 9),
    "latin1-seed": (
        "latin1-seed.txt",
        lambda: seed().decode().replace("•", "*").encode("latin-1"),
        _line_of(seed(), "·".encode()),
    ),
    "invalid-json": ("api.json", lambda: b'[{"paper": {"id": "2305.14314", "title": "x"}},\n  {oops}\n]', 2),
    "truncated-json": ("cut.json", lambda: b'[\n  {"paper": {"id": "2305.14314", "title": "x"', 2),
    "json-object": ("object.json", lambda: b'{"hello": "world", "items": [1, 2]}', None),
    "json-numbers": ("numbers.json", lambda: b"[1, 2, 3]", None),
    "json-item-without-title": ("notitle.json", lambda: b'[{"paper": {"id": "2305.14314", "upvotes": 3}}]', None),
    "json-empty-array": ("emptyarr.json", lambda: b"[]", None),
    "date-feb-30": ("feb30.txt", lambda: seed().replace(b"\nDec 29 1\n", b"\nFeb 30 1\n"), 347),
    "date-feb-29-in-common-year": ("feb29.txt", lambda: seed().replace(b"\nDec 29 1\n", b"\nFeb 29, 2025 1\n"), 347),
    "date-apr-31": ("apr31.txt", lambda: seed().replace(b"\nDec 29 1\n", b"\nApr 31\n"), 347),
    "date-line-garbage": ("garbage-date.txt", lambda: seed().replace(b"\nDec 29 1\n", b"\nyesterday\n"), 347),
}
CASES = sorted(BAD)


def write_bad(tmp_path: Path, case: str) -> tuple[Path, int | None]:
    file_name, make, line = BAD[case]
    path = tmp_path / "in" / file_name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(make())
    return path, line


def check_rejection(result: Any, path: Path, line: int | None) -> None:
    assert result.code == 2, (result.out, result.err)
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert str(path) in lines[0]
    if line is not None:
        assert f"{path}:{line}:" in lines[0]
    assert "Traceback" not in result.err


def snapshot(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Full contents of the store's tables (empty lists when a table does not exist)."""
    path = db_url.removeprefix("sqlite:///")
    if db_url.startswith("sqlite:") and not Path(path).exists():
        return {table: [] for table in TABLES}
    engine = create_engine(db_url, poolclass=NullPool)
    existing = set(inspect(engine).get_table_names())
    engine.dispose()
    return {table: sorted(storehelp.table(db_url, table), key=repr) if table in existing else [] for table in TABLES}


@pytest.fixture
def seeded_db(cli: Any, db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """A store holding one good seed; returns its contents."""
    result = cli("--db", db_url, "ingest", str(SEEDS / SEED_001), "--as-of", SEED_AS_OF[SEED_001])
    assert result.code == 0, result.err
    before = snapshot(db_url)
    assert len(before["paper"]) == 50 and len(before["dump"]) == 1 and len(before["sighting"]) == 50
    return before


@pytest.mark.parametrize("case", CASES)
def test_parse_rejects_bad_input(cli: Any, tmp_path: Path, case: str) -> None:
    path, line = write_bad(tmp_path, case)
    check_rejection(cli("parse", str(path)), path, line)


@pytest.mark.parametrize("case", CASES)
def test_ingest_rejects_bad_input_and_leaves_the_store_untouched(
    cli: Any, tmp_path: Path, db_url: str, seeded_db: dict[str, list[tuple[Any, ...]]], case: str
) -> None:
    path, line = write_bad(tmp_path, case)
    check_rejection(cli("--db", db_url, "ingest", str(path)), path, line)
    assert snapshot(db_url) == seeded_db


@pytest.mark.parametrize(
    "case", ["python-source", "csv", "csv-even-lines", "paragraphs", "one-paragraph", "json-object"]
)
def test_a_file_that_is_no_listing_is_called_so(cli: Any, tmp_path: Path, case: str) -> None:
    path, _ = write_bad(tmp_path, case)
    result = cli("parse", str(path))
    assert result.code == 2
    assert re.search(r"not a (paper )?listing|expected a JSON array of daily-papers items", result.err), result.err


def test_the_date_message_quotes_no_real_day(cli: Any, tmp_path: Path) -> None:
    path, _ = write_bad(tmp_path, "date-feb-30")
    result = cli("parse", str(path), "--as-of", "2025-12-30")
    assert result.code == 2
    assert "no real day" in result.err


@pytest.mark.parametrize("order", ["good-first", "bad-first"])
def test_ingest_of_a_good_and_a_bad_dump_stores_neither(
    cli: Any, tmp_path: Path, db_url: str, seeded_db: dict[str, list[tuple[Any, ...]]], order: str
) -> None:
    good = tmp_path / "in" / "a-good.txt"
    good.parent.mkdir()
    good.write_bytes(seed(SEED_000))
    bad = tmp_path / "in" / "z-bad.txt"
    bad.write_bytes(_cut_after_line(seed(), b"Training AI Co-Scientists Using Rubric Rewards"))
    paths = [good, bad] if order == "good-first" else [bad, good]
    # The same --as-of for both: the good dump is parsed first (ordered by name), then the bad one fails.
    result = cli("--db", db_url, "ingest", *map(str, paths), "--as-of", "2025-12-30")
    check_rejection(result, bad, 341)
    assert snapshot(db_url) == seeded_db
    # The good dump alone is fine, and is new to the store: it was not half-ingested before.
    result = cli("--db", db_url, "ingest", str(good), "--as-of", "2025-12-30", "--json")
    assert result.code == 0, result.err
    (line,) = result.json_lines()
    assert (line["entries"], line["duplicate_dump"]) == (47, False)


def test_ingest_of_a_good_and_a_bad_dump_into_a_fresh_store(cli: Any, tmp_path: Path, db_url: str) -> None:
    good = tmp_path / "a-good.txt"
    good.write_bytes(seed(SEED_000))
    bad = tmp_path / "z-bad.txt"
    bad.write_bytes(b"")
    result = cli("--db", db_url, "ingest", str(good), str(bad), "--as-of", "2025-12-30")
    check_rejection(result, bad, None)
    assert snapshot(db_url) == {table: [] for table in TABLES}


def test_dry_run_of_a_bad_dump_is_rejected_too(cli: Any, tmp_path: Path, db_url: str) -> None:
    path, line = write_bad(tmp_path, "meta-cut-before-date")
    check_rejection(cli("--db", db_url, "ingest", str(path), "--dry-run"), path, line)


def test_an_entry_without_blank_lines_between_its_parts_is_explained(cli: Any, tmp_path: Path) -> None:
    """A hand-written full dump with the title, abstract and meta block on consecutive lines: the
    message names the block's first line and says what is missing, not 'found a meta block' on a
    line that holds a title."""
    path = tmp_path / "2026-11-05.txt"
    path.write_text(
        "Daily Papers\n\nNov 5\n\n"
        "A Brand New Agent Benchmark\nWe present a benchmark for web agents.\n• 3 authors\n·\nNov 5 12\n\n"
        "Another Paper on Language Models\nWe study language models.\n• 2 authors\n·\nNov 5 3\n",
        encoding="utf-8",
    )
    result = cli("parse", str(path))
    check_rejection(result, path, 5)
    assert result.err.strip().endswith(
        ":5: expected a title on one line, found a block of 5 lines with a meta block on line 7"
        " (put a blank line between the title, the abstract and the meta block)"
    )


@pytest.mark.parametrize("command", ["parse", "ingest", "backfill"])
def test_a_folder_without_dumps_is_called_so(cli: Any, tmp_path: Path, db_url: str, command: str) -> None:
    """A folder holding no dump (empty, or only hidden and partial files) is bad input, as a glob
    that matches nothing is: one line naming it, exit 2, nothing stored (it used to be a silent 0)."""
    folder = tmp_path / "dumps"
    folder.mkdir()
    (folder / ".hidden.txt").write_bytes(seed())
    (folder / "today.txt.part").write_bytes(seed())
    result = cli("--db", db_url, command, str(folder))
    assert (result.code, result.out) == (2, "")
    assert result.err.strip() == (
        f"paperdigest: error: {folder}: no dump files in this folder (hidden files and *.part, *.tmp,"
        " *.crdownload, *.error, *.swp and *~ files are skipped)"
    )
    if command != "parse":  # parse takes one source
        among = cli("--db", db_url, command, str(SEEDS / SEED_001), str(folder))  # one empty folder among others
        assert among.code == 2 and f"{folder}: no dump files" in among.err
    assert snapshot(db_url) == {table: [] for table in TABLES}
