"""The three text layouts of a listing dump: golden files, layouts, fields, robustness, properties.

Golden files
------------
``tests/golden/parse/<seed>.jsonl`` holds the exact stdout of

    paperdigest parse seeds/<seed> --as-of <SEED_AS_OF[seed]>

(one JSON object per entry, UTF-8, in listing order), and is compared byte for byte. When a
change to the parser's output is deliberate, regenerate the files and review the diff before
committing it:

    PAPERDIGEST_REGEN_GOLDEN=1 pytest tests/test_parse_text.py tests/test_parse_formats.py
    git diff tests/golden

With PAPERDIGEST_REGEN_GOLDEN=1 the golden tests rewrite their files instead of comparing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paperdigest.errors import ParseError
from paperdigest.ingest.identity import fold_space
from paperdigest.model import Entry, Listing, RawDump
from paperdigest.parse import parse_dump
from paperdigest.sources import files
from tests.conftest import GOLDEN, SEED_AS_OF, SEEDS
from tests.conftest import check_golden as shared_check_golden

SEED_000 = "000_99135a5897ec12b8.txt"
SEED_001 = "001_3e4a064d45c80381.txt"
SEED_002 = "002_35bc1272005cc0d3.txt"
SEED_003 = "003_00886173680504fb.txt"
SEED_004 = "004_d0e4e6143df38525.txt"
SEED_NAMES = sorted(SEED_AS_OF)
LAYOUTS = {SEED_000: "full", SEED_001: "pairs", SEED_002: "full", SEED_003: "dense", SEED_004: "full"}
COUNTS = {SEED_000: 47, SEED_001: 50, SEED_002: 77, SEED_003: 154, SEED_004: 75}
CONTRACT_KEYS = ["position", "title", "abstract", "authors", "org", "published", "upvotes", "arxiv_id"]
REGEN = os.environ.get("PAPERDIGEST_REGEN_GOLDEN") == "1"


def check_golden(name: str, actual: str) -> None:
    shared_check_golden(f"parse/{name}.jsonl", actual)


def seed_bytes(name: str) -> bytes:
    return (SEEDS / name).read_bytes()


def as_of_of(name: str) -> dt.date:
    return dt.date.fromisoformat(SEED_AS_OF[name])


def parse_bytes(data: bytes, as_of: dt.date | None, source: str = "dump.txt", mtime: float | None = None) -> Listing:
    return parse_dump(RawDump(source, data, mtime), as_of)


def parse_seed(name: str, as_of: dt.date | None = None) -> Listing:
    return parse_bytes(seed_bytes(name), as_of or as_of_of(name), str(SEEDS / name))


def by_title(listing: Listing, title: str) -> Entry:
    found = [e for e in listing.entries if e.title == title]
    assert len(found) == 1, f"{title!r} found {len(found)} times"
    return found[0]


# --- 1. golden files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SEED_NAMES)
def test_parse_of_each_seed_matches_its_golden_file(cli: Any, name: str) -> None:
    result = cli("parse", str(SEEDS / name), "--as-of", SEED_AS_OF[name])
    assert result.code == 0, result.err
    assert result.err == ""
    check_golden(name, result.out)


@pytest.mark.parametrize("name", SEED_NAMES)
def test_golden_lines_follow_the_parse_contract(name: str) -> None:
    lines = (GOLDEN / "parse" / f"{name}.jsonl").read_bytes().decode("utf-8").splitlines()
    assert len(lines) == COUNTS[name]
    for position, line in enumerate(lines, 1):
        obj = json.loads(line)
        assert list(obj) == CONTRACT_KEYS
        assert obj["position"] == position
        assert obj["title"] and obj["title"] == fold_space(obj["title"])
        assert obj["abstract"] and obj["abstract"] == fold_space(obj["abstract"])
        assert obj["arxiv_id"] is None  # text layouts carry no arXiv id
        if obj["published"] is not None:
            dt.date.fromisoformat(obj["published"])
        has_meta = obj["upvotes"] is not None
        assert (obj["published"] is not None) == has_meta
        assert (obj["authors"] is not None or obj["org"] is not None) == has_meta


def test_golden_files_keep_non_ascii_as_utf8() -> None:
    data = (GOLDEN / "parse" / f"{SEED_001}.jsonl").read_bytes()
    assert "PokéChamp: an Expert-level Minimax Language Agent".encode() in data
    assert b"\\u00e9" not in data


# --- 2. layouts and entry counts ---------------------------------------------------------------

_HEADER_TEXT = {
    "new",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
    "subscribe",
    "daily papers",
    "byak and the research community",
}
_BARE_DATE = re.compile(r"^[A-Z][a-z]{2} \d{1,2}$")


def count_entries_independently(text: str) -> tuple[int, int]:
    """(entries, meta blocks) counted from the raw text, without the parser."""
    if "\n\n" not in text:  # dense: one title line and one abstract line per entry
        lines = [line for line in text.split("\n") if line.strip()]
        body = [line for line in lines if line.strip().lower() not in _HEADER_TEXT]
        assert len(body) % 2 == 0
        return len(body) // 2, 0
    blocks = [block.strip("\n").split("\n") for block in re.split(r"\n[ \t]*\n", text) if block.strip()]
    while len(blocks[0]) == 1 and (blocks[0][0].strip().lower() in _HEADER_TEXT or _BARE_DATE.match(blocks[0][0])):
        blocks.pop(0)
    singles = sum(1 for block in blocks if len(block) == 1)
    metas = sum(1 for block in blocks if len(block) == 3 and block[1].strip() == "·")
    assert singles + metas == len(blocks), "a block that is neither a line nor a meta block"
    assert singles % 2 == 0, "every entry is a title line and an abstract line"
    return singles // 2, metas


@pytest.mark.parametrize("name", SEED_NAMES)
def test_layout_of_each_seed(name: str) -> None:
    assert parse_seed(name).layout == LAYOUTS[name]


@pytest.mark.parametrize("name", SEED_NAMES)
def test_entry_count_of_each_seed_matches_an_independent_count(name: str) -> None:
    text = seed_bytes(name).decode("utf-8")
    entries, metas = count_entries_independently(text)
    assert entries == COUNTS[name]
    assert metas == len(re.findall(r"(?m)^·$", text))
    listing = parse_seed(name)
    assert len(listing.entries) == COUNTS[name]
    assert [e.position for e in listing.entries] == list(range(1, COUNTS[name] + 1))
    # Every meta block went to exactly one entry; entries without one have unknown upvotes.
    assert sum(1 for e in listing.entries if e.upvotes is not None) == metas


def test_entries_start_on_the_line_of_their_title() -> None:
    listing = parse_seed(SEED_000)
    lines = seed_bytes(SEED_000).decode("utf-8").split("\n")
    for entry in listing.entries:
        assert entry.line is not None
        assert fold_space(lines[entry.line - 1]) == entry.title


# --- 3. specific fields ------------------------------------------------------------------------


def test_first_entry_of_seed_000() -> None:
    first = parse_seed(SEED_000).entries[0]
    assert first.title == "Foundation Models for Decision Making: Problems, Methods, and Opportunities"
    assert first.abstract is not None
    assert first.abstract.startswith("Foundation models pretrained on diverse data at scale")
    assert (first.authors, first.org, first.published, first.upvotes) == (6, None, dt.date(2023, 3, 7), 0)


def test_org_line_and_date_with_count_in_seed_000() -> None:
    entry = by_title(parse_seed(SEED_000), "Training AI Co-Scientists Using Rubric Rewards")  # "Dec 29 1"
    assert entry.org == "AI at Meta"
    assert entry.authors is None
    assert entry.published == dt.date(2025, 12, 29)
    assert entry.upvotes == 1


def test_org_lines_simular_and_amazon() -> None:
    simular = by_title(
        parse_seed(SEED_000), "Agent S2: A Compositional Generalist-Specialist Framework for Computer Use Agents"
    )
    assert (simular.org, simular.authors, simular.published, simular.upvotes) == (
        "Simular",
        None,
        dt.date(2025, 4, 1),
        2,
    )
    amazon = by_title(parse_seed(SEED_004), "Multimodal Policy Internalization for Conversational Agents")
    assert (amazon.org, amazon.authors, amazon.published, amazon.upvotes) == ("Amazon", None, dt.date(2026, 10, 10), 2)


def test_date_with_year_and_count() -> None:
    entry = by_title(parse_seed(SEED_002), "Law of the Weakest Link: Cross Capabilities of Large Language Models")
    assert (entry.authors, entry.published, entry.upvotes) == (17, dt.date(2024, 9, 30), 2)  # "Sep 30, 2024 2"


def test_date_without_count_means_zero_upvotes() -> None:
    listing = parse_seed(SEED_002)
    entry = next(e for e in listing.entries if e.title.startswith("RoboOS: A Hierarchical Embodied Framework"))
    assert (entry.authors, entry.published, entry.upvotes) == (8, dt.date(2026, 5, 6), 0)  # "May 6"


def test_entry_without_meta_has_unknown_fields() -> None:
    entry = parse_seed(SEED_000).entries[2]
    assert entry.title.startswith("Beyond Sight: Finetuning Generalist Robot Policies")
    assert entry.abstract is not None and entry.abstract.startswith("Interacting with the world")
    assert (entry.authors, entry.org, entry.published, entry.upvotes) == (None, None, None, None)


def test_pairs_layout_has_no_meta_at_all() -> None:
    for entry in parse_seed(SEED_001).entries:
        assert entry.abstract
        assert (entry.authors, entry.org, entry.published, entry.upvotes) == (None, None, None, None)


def test_year_inferred_across_new_year() -> None:
    title = "Training AI Co-Scientists Using Rubric Rewards"  # "Dec 29 1"
    assert by_title(parse_seed(SEED_000, dt.date(2026, 1, 2)), title).published == dt.date(2025, 12, 29)
    assert by_title(parse_seed(SEED_000, dt.date(2025, 12, 29)), title).published == dt.date(2025, 12, 29)
    assert by_title(parse_seed(SEED_000, dt.date(2025, 12, 28)), title).published == dt.date(2024, 12, 29)
    agent_refine = "AgentRefine: Enhancing Agent Generalization through Refinement Tuning"  # "Jan 3"
    assert by_title(parse_seed(SEED_000), agent_refine).published == dt.date(2025, 1, 3)
    assert by_title(parse_seed(SEED_000, dt.date(2026, 1, 3)), agent_refine).published == dt.date(2026, 1, 3)


def _one_entry_listing(date_line: str) -> bytes:
    return (
        "new\n\nSubscribe\n\nDaily Papers\n\nbyAK and the research community\n\nMar 1\n\n"
        f"A Leap-Day Paper\n\nAn abstract.\n\n  • 3 authors\n·\n{date_line}\n"
    ).encode()


@pytest.mark.parametrize(
    ("date_line", "as_of", "published", "upvotes"),
    [
        ("Feb 29", dt.date(2026, 1, 2), dt.date(2024, 2, 29), 0),
        ("Feb 29 7", dt.date(2028, 3, 1), dt.date(2028, 2, 29), 7),
        ("Feb 29", dt.date(2028, 2, 29), dt.date(2028, 2, 29), 0),
        ("Feb 29", dt.date(2028, 2, 28), dt.date(2024, 2, 29), 0),
        ("Feb 29, 2020 3", dt.date(2026, 1, 2), dt.date(2020, 2, 29), 3),
    ],
)
def test_feb_29(date_line: str, as_of: dt.date, published: dt.date, upvotes: int) -> None:
    (entry,) = parse_bytes(_one_entry_listing(date_line), as_of).entries
    assert (entry.published, entry.upvotes, entry.authors) == (published, upvotes, 3)


def test_glued_subscribe_is_removed_from_the_first_dense_title() -> None:
    listing = parse_seed(SEED_003)
    assert listing.entries[0].title == "Pangu-Agent: A Fine-Tunable Generalist Agent with Structured Reasoning"
    assert listing.entries[0].abstract is not None
    assert listing.entries[0].abstract.startswith("A key method for creating Artificial Intelligence (AI) agents")
    assert listing.entries[-1].title == "Refusal-Trained LLMs Are Easily Jailbroken As Browser Agents"
    assert not any(e.title.startswith("Subscribe") for e in listing.entries)


def test_non_ascii_title_kept(cli: Any) -> None:
    title = "PokéChamp: an Expert-level Minimax Language Agent"
    entry = parse_seed(SEED_001).entries[1]
    assert entry.title == title
    assert entry.abstract is not None and entry.abstract.startswith("We introduce Pok\\'eChamp")
    result = cli("parse", str(SEEDS / SEED_001), "--as-of", SEED_AS_OF[SEED_001])
    assert json.loads(result.out.splitlines()[1])["title"] == title
    assert title in result.out  # not \u-escaped


# --- 4. robustness -----------------------------------------------------------------------------

VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "crlf": lambda data: data.replace(b"\n", b"\r\n"),
    "cr": lambda data: data.replace(b"\n", b"\r"),
    "utf8-bom": lambda data: b"\xef\xbb\xbf" + data,
    "trailing-whitespace": lambda data: b"\n".join(line + b" \t " for line in data.split(b"\n")),
    "leading-and-trailing-blank-lines": lambda data: b"\n\n  \n" + data + b"\n\n \n",
    "utf16-le-bom": lambda data: data.decode("utf-8").encode("utf-16"),
    "utf16-be-bom": lambda data: b"\xfe\xff" + data.decode("utf-8").encode("utf-16-be"),
    "utf16-crlf": lambda data: data.decode("utf-8").replace("\n", "\r\n").encode("utf-16"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", SEED_NAMES)
def test_encoding_and_line_ending_variants_give_the_same_entries(tmp_path: Path, name: str, variant: str) -> None:
    path = tmp_path / name
    path.write_bytes(VARIANTS[variant](seed_bytes(name)))
    original = parse_seed(name)
    listing = parse_dump(files.read(path), as_of_of(name))
    assert listing.layout == original.layout
    assert listing.entries == original.entries


TRICKY_TITLES = ["A · B", "Mar 8", "Daily Papers", "Subscribe to X", "new", "Sep 30, 2024 2", "• not authors"]


def _replace_titles(name: str, positions: list[int]) -> tuple[bytes, dict[int, str]]:
    """The seed with the titles at `positions` replaced by tricky ones."""
    lines = seed_bytes(name).decode("utf-8").split("\n")
    listing = parse_seed(name)
    replaced = {}
    for position, tricky in zip(positions, TRICKY_TITLES, strict=True):
        entry = listing.entries[position - 1]
        assert entry.line is not None
        lines[entry.line - 1] = tricky
        replaced[position] = tricky
    return "\n".join(lines).encode("utf-8"), replaced


@pytest.mark.parametrize("name", [SEED_000, SEED_001, SEED_003])
def test_titles_that_look_like_other_lines_stay_titles(name: str) -> None:
    data, replaced = _replace_titles(name, [3, 10, 17, 24, 31, 38, 45])
    original = parse_seed(name)
    listing = parse_bytes(data, as_of_of(name))
    assert listing.layout == original.layout
    assert len(listing.entries) == len(original.entries)
    for before, after in zip(original.entries, listing.entries, strict=True):
        assert after.title == replaced.get(before.position, before.title)
        assert (after.abstract, after.authors, after.org, after.published, after.upvotes) == (
            before.abstract,
            before.authors,
            before.org,
            before.published,
            before.upvotes,
        )


def test_tricky_titles_in_a_small_full_listing() -> None:
    text = (
        "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
        "byAK and the research community\n\nDec 30\n\n"
        "Ordinary Title\n\nabs 0\n\n  • 2 authors\n·\nDec 1\n\n"
        "A · B\n\nabs 1\n\n  • 3 authors\n·\nMar 8 2\n\n"
        "Mar 8\n\nabs 2\n\n  • 4 authors\n·\nMar 9\n\n"
        "Daily Papers\n\nabs 3\n\n"
        "Subscribe to X\n\nabs 4\n\nsome-org Some Org\n·\nFeb 29 5\n"
    )
    listing = parse_bytes(text.encode(), dt.date(2025, 12, 30))
    assert listing.layout == "full"
    got = [(e.title, e.abstract, e.authors, e.org, e.published, e.upvotes) for e in listing.entries]
    assert got == [
        ("Ordinary Title", "abs 0", 2, None, dt.date(2025, 12, 1), 0),
        ("A · B", "abs 1", 3, None, dt.date(2025, 3, 8), 2),
        ("Mar 8", "abs 2", 4, None, dt.date(2025, 3, 9), 0),
        ("Daily Papers", "abs 3", None, None, None, None),
        ("Subscribe to X", "abs 4", None, "Some Org", dt.date(2024, 2, 29), 5),
    ]


# Capture date: --as-of, else a YYYY-MM-DD in the file name, else the header date with the
# year from the mtime, else the mtime. Seed 000 has the header date "Dec 30" and "Dec 29 1".
_CO_SCIENTISTS = "Training AI Co-Scientists Using Rubric Rewards"


def _timestamp(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, 12, 0, tzinfo=dt.UTC).timestamp()


def _seed_copy(tmp_path: Path, file_name: str, mtime_day: dt.date, name: str = SEED_000) -> Path:
    path = tmp_path / file_name
    path.write_bytes(seed_bytes(name))
    os.utime(path, (_timestamp(mtime_day), _timestamp(mtime_day)))
    return path


def test_capture_date_from_the_file_name(tmp_path: Path) -> None:
    path = _seed_copy(tmp_path, "daily-2026-01-02.txt", dt.date(2031, 6, 1))
    listing = parse_dump(files.read(path))
    assert listing.as_of == dt.date(2026, 1, 2)
    assert by_title(listing, _CO_SCIENTISTS).published == dt.date(2025, 12, 29)


@pytest.mark.parametrize(
    ("mtime_day", "capture"),
    [
        (dt.date(2031, 12, 31), dt.date(2031, 12, 30)),
        (dt.date(2031, 12, 30), dt.date(2031, 12, 30)),
        (dt.date(2032, 1, 5), dt.date(2031, 12, 30)),  # captured Dec 30, file touched in January
        (dt.date(2032, 6, 15), dt.date(2031, 12, 30)),
    ],
)
def test_capture_date_from_the_header_and_the_mtime(tmp_path: Path, mtime_day: dt.date, capture: dt.date) -> None:
    path = _seed_copy(tmp_path, "listing.txt", mtime_day)
    listing = parse_dump(files.read(path))
    assert listing.as_of == capture
    assert by_title(listing, _CO_SCIENTISTS).published == dt.date(capture.year, 12, 29)


def test_capture_date_from_the_mtime_when_there_is_no_header_date(tmp_path: Path) -> None:
    path = _seed_copy(tmp_path, "dense.txt", dt.date(2031, 3, 4), SEED_003)
    assert parse_dump(files.read(path)).as_of == dt.date(2031, 3, 4)


def test_header_and_mtime_through_the_cli(cli: Any, tmp_path: Path) -> None:
    path = _seed_copy(tmp_path, "listing.txt", dt.date(2031, 12, 31))
    result = cli("parse", str(path))
    assert result.code == 0, result.err
    published = {obj["title"]: obj["published"] for obj in result.json_lines()}
    assert published[_CO_SCIENTISTS] == "2031-12-29"


def test_as_of_wins_over_the_file_name_and_the_header(cli: Any, tmp_path: Path) -> None:
    path = _seed_copy(tmp_path, "daily-2026-01-02.txt", dt.date(2031, 12, 31))
    assert parse_dump(files.read(path), dt.date(2040, 1, 1)).as_of == dt.date(2040, 1, 1)
    result = cli("parse", str(path), "--as-of", "2040-01-01")
    assert result.code == 0, result.err
    published = {obj["title"]: obj["published"] for obj in result.json_lines()}
    assert published[_CO_SCIENTISTS] == "2039-12-29"
    result = cli("parse", str(path))
    published = {obj["title"]: obj["published"] for obj in result.json_lines()}
    assert published[_CO_SCIENTISTS] == "2025-12-29"


def test_header_date_naming_no_real_day_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "listing.txt"
    path.write_bytes(seed_bytes(SEED_000).replace(b"\nDec 30\n", b"\nFeb 30\n", 1))
    with pytest.raises(ParseError) as caught:
        parse_dump(files.read(path))
    assert caught.value.line == 11
    assert parse_dump(files.read(path), dt.date(2025, 12, 30)).entries == parse_seed(SEED_000).entries


# --- 5. property tests ---------------------------------------------------------------------------
# Generated listings rendered in each layout and parsed back (every field, white space folded), and
# the fuzzing of the text parser: tests/test_fuzz_parse.py, generators in tests/listing_gen.py.
