"""Every field the daily-papers API gives (issue 12): parsed from the real sample, stored on SQLite
and PostgreSQL, updated by later sightings like upvotes, shown
by `papers --json`; text dumps leave them null."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from paperdigest.ingest import apply
from paperdigest.model import Paper, RawDump
from paperdigest.parse import parse_dump
from paperdigest.parse.api_json import web_url
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from tests.conftest import FIXTURES, SEEDS

API_FIXTURE = FIXTURES / "hf_daily_papers_2023-05.json"
ITEMS: list[dict[str, Any]] = json.loads(API_FIXTURE.read_bytes())
QLORA = "2305.14314"


def dump(items: list[dict[str, Any]], name: str = "api.json", as_of: dt.date = dt.date(2023, 5, 23)) -> Any:
    return parse_dump(RawDump(name, json.dumps(items).encode(), None), as_of)


def item(arxiv_id: str) -> dict[str, Any]:
    return json.loads(json.dumps(next(i for i in ITEMS if i["paper"]["id"] == arxiv_id)))


def by_arxiv(engine: Engine) -> dict[str | None, Paper]:
    with engine.connect() as conn:
        return {p.arxiv_id: p for p in queries.all_papers(conn)}


# --- parse ---------------------------------------------------------------------------------------


def test_the_real_sample_gives_every_field() -> None:
    entries = {e.arxiv_id: e for e in dump(ITEMS).entries}
    qlora = entries[QLORA]
    assert qlora.author_names == ("Tim Dettmers", "Artidoro Pagnoni", "Ari Holtzman", "Luke Zettlemoyer")
    assert qlora.authors == 4  # still the count
    assert qlora.ai_summary is not None and qlora.ai_summary.startswith("QLoRA enables efficient finetuning")
    assert qlora.ai_keywords is not None and qlora.ai_keywords[:3] == ("QLoRA", "Low Rank Adapters", "LoRA")
    assert (qlora.github_repo, qlora.github_stars, qlora.comments) == ("https://github.com/artidoro/qlora", 10939, 10)
    assert qlora.thumbnail == f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{QLORA}.png"
    assert qlora.project_page is None and qlora.withdrawn_at is None
    with_page = [e for e in entries.values() if e.project_page]
    assert len(with_page) == 18 and all(e.project_page.startswith("http") for e in with_page)  # type: ignore[union-attr]
    assert sum(1 for e in entries.values() if e.github_repo) == 150
    assert all(e.author_names and len(e.author_names) == e.authors for e in entries.values())


def test_a_withdrawn_paper_and_an_organisation_are_read() -> None:
    withdrawn = item(QLORA)
    withdrawn["paper"]["withdrawnAt"] = "2023-06-02T09:12:00.000Z"
    withdrawn["organization"] = {"name": "uw", "fullname": "University of Washington"}
    (entry,) = dump([withdrawn]).entries
    assert entry.withdrawn_at == dt.date(2023, 6, 2)
    assert entry.org == "University of Washington"
    broken = item(QLORA)
    broken["paper"]["withdrawnAt"] = "not a date"  # an optional date that is no date is unknown, not an error
    assert dump([broken]).entries[0].withdrawn_at is None


@pytest.mark.parametrize(
    "value",
    ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "/papers/x", "https://", "data:text/html,x", "https://a b/", 42,
     "https://example.org/\x00", "ftp://example.org/"],
)  # fmt: skip
def test_links_that_are_no_web_addresses_are_dropped(value: Any) -> None:
    """A digest links to the code and the project page: only absolute http(s) URLs are kept."""
    hostile = item(QLORA)
    hostile["paper"]["githubRepo"] = value
    hostile["paper"]["projectPage"] = value
    hostile["thumbnail"] = value
    (entry,) = dump([hostile]).entries
    assert (entry.github_repo, entry.project_page, entry.thumbnail) == (None, None, None)
    assert web_url("https://github.com/a/b") == "https://github.com/a/b"


def test_a_text_dump_leaves_them_unknown() -> None:
    seed = SEEDS / "004_d0e4e6143df38525.txt"
    listing = parse_dump(RawDump(str(seed), seed.read_bytes(), None), dt.date(2026, 11, 4))
    for name in ("author_names", "ai_summary", "ai_keywords", "github_repo", "github_stars", "project_page",
                 "comments", "thumbnail", "withdrawn_at"):  # fmt: skip
        assert {getattr(e, name) for e in listing.entries} == {None}, name


def test_the_parse_line_keeps_the_contract_shape() -> None:
    """`parse` prints the contract's keys (DESIGN.md); the API's fields show in `papers --json`."""
    line = dump([item(QLORA)]).entries[0].to_json()
    assert list(line) == ["position", "title", "abstract", "authors", "org", "published", "upvotes", "arxiv_id"]


# --- the store, on every path --------------------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A new store on the engine under test (conftest.py: SQLite and PostgreSQL)."""
    store = open_engine(db_url)
    yield store
    store.dispose()


def test_every_field_is_stored_and_read_back(engine: Engine) -> None:
    listing = dump(ITEMS, as_of=dt.date(2023, 5, 31))
    assert apply(engine, listing).new == len(ITEMS)
    stored = by_arxiv(engine)
    for entry in listing.entries:
        paper = stored[entry.arxiv_id]
        for name in ("author_names", "ai_summary", "ai_keywords", "github_repo", "github_stars", "project_page",
                     "comments", "thumbnail", "withdrawn_at"):  # fmt: skip
            assert getattr(paper, name) == getattr(entry, name), (entry.arxiv_id, name)
    assert isinstance(stored[QLORA].author_names, tuple)  # hashable: papers are frozen
    with engine.connect() as conn:
        known = queries.papers_by_identity(conn, [QLORA], [])
    assert known[0][0] == stored[QLORA]


def test_a_later_sighting_updates_them_and_unknown_never_overwrites(engine: Engine) -> None:
    first = item(QLORA)
    apply(engine, dump([first], "day1.json", dt.date(2023, 5, 23)))
    later = item(QLORA)
    later["paper"].update(githubStars=12000, upvotes=80, ai_summary="A newer summary.")
    later["paper"]["withdrawnAt"] = "2023-05-25T00:00:00Z"
    later["numComments"] = 12
    result = apply(engine, dump([later], "day2.json", dt.date(2023, 5, 24)))
    assert (result.updated, result.new) == (1, 0)
    paper = by_arxiv(engine)[QLORA]
    assert (paper.github_stars, paper.comments, paper.upvotes) == (12000, 12, 80)
    assert paper.ai_summary == "A newer summary." and paper.withdrawn_at == dt.date(2023, 5, 25)
    silent = item(QLORA)  # a sighting that says nothing of them: what is known stays
    for key in ("githubRepo", "githubStars", "ai_summary", "ai_keywords", "authors"):
        silent["paper"].pop(key)
    del silent["numComments"], silent["thumbnail"]
    apply(engine, dump([silent], "day3.json", dt.date(2023, 5, 25)))
    kept = by_arxiv(engine)[QLORA]
    assert (kept.github_repo, kept.github_stars, kept.comments) == ("https://github.com/artidoro/qlora", 12000, 12)
    assert kept.author_names == paper.author_names and kept.ai_keywords == paper.ai_keywords
    older = item(QLORA)  # an older dump only fills gaps
    older["paper"]["githubStars"] = 5
    apply(engine, dump([older], "day0.json", dt.date(2023, 5, 20)))
    assert by_arxiv(engine)[QLORA].github_stars == 12000


def test_papers_json_shows_them(cli: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    folder = tmp_path / "dumps"
    folder.mkdir()
    (folder / "2023-05-31_api.json").write_bytes(API_FIXTURE.read_bytes())
    assert cli("--db", db, "ingest", str(folder)).code == 0
    lines = {line["arxiv_id"]: line for line in cli("--db", db, "papers", "--top", "300", "--json").json_lines()}
    qlora = lines[QLORA]
    assert qlora["authors"] == 4 and qlora["author_names"][0] == "Tim Dettmers"
    assert qlora["ai_keywords"][0] == "QLoRA" and qlora["ai_summary"].startswith("QLoRA enables")
    assert (qlora["github_repo"], qlora["github_stars"], qlora["comments"]) == (
        "https://github.com/artidoro/qlora",
        10939,
        10,
    )
    assert qlora["project_page"] is None and qlora["withdrawn_at"] is None
    assert "thumbnail" not in qlora and "abstract" not in qlora


def test_papers_marks_a_withdrawn_paper(cli: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    withdrawn = item(QLORA)
    withdrawn["paper"]["withdrawnAt"] = "2023-06-02T09:12:00.000Z"
    path = tmp_path / "2023-06-03_api.json"
    path.write_text(json.dumps([withdrawn, item("2305.07759")]), encoding="utf-8")
    assert cli("--db", db, "ingest", str(path)).code == 0
    lines = {line["arxiv_id"]: line for line in cli("--db", db, "papers", "--json").json_lines()}
    assert lines[QLORA]["withdrawn_at"] == "2023-06-02" and lines["2305.07759"]["withdrawn_at"] is None
    table = cli("--db", db, "papers").out
    assert table.count("[WITHDRAWN") == 1 and "2023-06-02]" in table  # the cell may wrap between them
    assert "Tim Dettmers, Artidoro" in table  # the authors' names, where the listing gave them
