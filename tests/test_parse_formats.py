"""Listings from the network: the daily-papers API JSON and HTML pages (embedded props, else cards).

The API fixture tests/fixtures/hf_daily_papers_2023-05.json is a copy of the real sample in
../shared/fixtures (259 items of May 2023). Its parse is also a golden file,
tests/golden/parse/hf_daily_papers_2023-05.json.jsonl; regenerate it deliberately with
PAPERDIGEST_REGEN_GOLDEN=1 (see tests/test_parse_text.py).

The HTML fixtures are small hand-made pages in the shape of the real ones:
- daily_papers_props.html: the items as HTML-escaped JSON in the `data-props` of the element
  with data-target="DailyPapers" (key dailyPapers), with the server-rendered cards below it;
- daily_papers_cards.html: only the `article` cards (title link `h3 a[href^="/papers/..."]`,
  the upvote count in the card, a comment count after it, a promo article without a title link);
- not_a_listing.html: drifted markup where neither works.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from paperdigest.errors import ParseError
from paperdigest.ingest.identity import fold_space
from paperdigest.model import Listing, RawDump
from paperdigest.parse import parse_dump
from paperdigest.sources import files
from tests.conftest import FIXTURES
from tests.conftest import check_golden as shared_check_golden

API_JSON = FIXTURES / "hf_daily_papers_2023-05.json"
PROPS_HTML = FIXTURES / "daily_papers_props.html"
CARDS_HTML = FIXTURES / "daily_papers_cards.html"
NEITHER_HTML = FIXTURES / "not_a_listing.html"
AS_OF = dt.date(2023, 6, 1)


def check_golden(name: str, actual: str) -> None:
    shared_check_golden(f"parse/{name}.jsonl", actual)


def parse_file(path: Path, as_of: dt.date | None = AS_OF) -> Listing:
    return parse_dump(files.read(path), as_of)


def parse_text(text: str, source: str = "page.html") -> Listing:
    return parse_dump(RawDump(source, text.encode("utf-8"), None), AS_OF)


# --- API JSON ----------------------------------------------------------------------------------


def test_api_json_fixture_matches_its_golden_file(cli: Any) -> None:
    result = cli("parse", str(API_JSON), "--as-of", AS_OF.isoformat())
    assert result.code == 0, result.err
    assert result.err == ""
    check_golden(API_JSON.name, result.out)


def test_api_json_fixture_entries() -> None:
    items = json.loads(API_JSON.read_text(encoding="utf-8"))
    listing = parse_file(API_JSON)
    assert listing.layout == "api-json"
    assert len(items) == 259
    assert len(listing.entries) == 259
    for position, (item, entry) in enumerate(zip(items, listing.entries, strict=True), 1):
        paper = item["paper"]
        assert entry.position == position
        assert entry.arxiv_id == paper["id"]
        assert re.fullmatch(r"\d{4}\.\d{4,5}", entry.arxiv_id or "")
        assert entry.title == " ".join(paper["title"].split())
        assert "\n" not in entry.title and "  " not in entry.title
        assert entry.abstract == " ".join(paper["summary"].split())
        assert entry.authors == len(paper["authors"])
        assert entry.upvotes == paper["upvotes"]
        assert entry.published == dt.date.fromisoformat(paper["publishedAt"][:10])


def test_api_json_fixture_first_items() -> None:
    first, second = parse_file(API_JSON).entries[:2]
    assert (first.arxiv_id, first.title, first.authors, first.upvotes, first.published) == (
        "2305.14314",
        "QLoRA: Efficient Finetuning of Quantized LLMs",
        4,
        62,
        dt.date(2023, 5, 23),
    )
    assert first.abstract is not None and first.abstract.startswith(
        "We present QLoRA, an efficient finetuning approach"
    )
    # "...Speak Coherent\n  English?" in the source: the line wrap is folded.
    assert second.title == "TinyStories: How Small Can Language Models Be and Still Speak Coherent English?"
    assert (second.arxiv_id, second.authors, second.upvotes) == ("2305.07759", 2, 46)


def _item(**paper: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "2305.14314",
        "title": "A Title",
        "summary": "An abstract.",
        "authors": [],
        "publishedAt": "2023-05-23T17:50:33.000Z",
        "upvotes": 3,
    }
    base.update(paper)
    return {"paper": base, "numComments": 1, "unknownField": {"nested": [1, 2]}}


def test_api_json_small_cases() -> None:
    items = [
        _item(organization={"name": "facebook", "fullname": "AI at Meta"}),
        _item(id="arXiv:2305.07759v3", title="Wrapped\n  Title", authors=[{"name": "A"}, {"name": "B"}], upvotes=0),
        _item(id="2305.10973", summary=""),
        {"paper": _item(id="2305.10974")["paper"], "organization": {"name": "amazon"}},
    ]
    listing = parse_text(json.dumps(items), "api.json")
    got = [(e.arxiv_id, e.title, e.abstract, e.authors, e.org, e.upvotes) for e in listing.entries]
    assert got == [
        ("2305.14314", "A Title", "An abstract.", 0, "AI at Meta", 3),
        ("2305.07759", "Wrapped Title", "An abstract.", 2, None, 0),
        ("2305.10973", "A Title", None, 0, None, 3),
        ("2305.10974", "A Title", "An abstract.", 0, "amazon", 3),
    ]


def test_api_json_with_a_bom_and_crlf() -> None:
    text = json.dumps([_item()], indent=2).replace("\n", "\r\n")
    listing = parse_dump(RawDump("api.json", b"\xef\xbb\xbf" + text.encode(), None), AS_OF)
    assert [e.arxiv_id for e in listing.entries] == ["2305.14314"]


# --- HTML: embedded props ----------------------------------------------------------------------


def test_html_props_fixture() -> None:
    listing = parse_file(PROPS_HTML)
    assert listing.layout == "html"
    got = [(e.position, e.arxiv_id, e.title, e.authors, e.org, e.published, e.upvotes) for e in listing.entries]
    assert got == [
        (1, "2305.14314", "QLoRA: Efficient Finetuning of Quantized LLMs", 4, None, dt.date(2023, 5, 23), 62),
        (
            2,
            "2305.07759",
            "TinyStories: How Small Can Language Models Be and Still Speak Coherent English?",
            2,
            "Microsoft",
            dt.date(2023, 5, 12),
            46,
        ),
        (
            3,
            "2305.16635",
            "Impossible Distillation: from Low-Quality Model to High-Quality Dataset & Model for "
            "Summarization and Paraphrasing",
            8,
            None,
            dt.date(2023, 5, 26),
            1,
        ),
        (4, "2305.99999", 'Q&A <Bench>: "Quoted" Évaluation of Agents', 2, None, dt.date(2023, 5, 31), 0),
    ]
    # The abstracts come from the props (the cards have none), unescaped exactly once.
    assert all(e.abstract for e in listing.entries)
    assert listing.entries[0].abstract is not None
    assert listing.entries[0].abstract.startswith("We present QLoRA")
    assert listing.entries[3].abstract == "Line one &amp; <not a tag> line two."


def test_html_props_equal_the_api_items() -> None:
    """The same items served as API JSON and embedded in a page parse to the same entries."""
    page = PROPS_HTML.read_text(encoding="utf-8")
    holder = re.search(r'data-target="DailyPapers" data-props="([^"]*)"', page)
    assert holder is not None
    items = json.loads(html.unescape(holder.group(1)))["dailyPapers"]
    assert parse_text(json.dumps(items), "api.json").entries == parse_file(PROPS_HTML).entries


def _page(body: str) -> str:
    return f"<!doctype html><html><head><title>Daily Papers</title></head><body>{body}</body></html>"


def _props_div(props: Any, target: str = "DailyPapers") -> str:
    return f'<div data-target="{target}" data-props="{html.escape(json.dumps(props), quote=True)}"></div>'


def test_html_props_win_over_cards() -> None:
    props = {"dailyPapers": [_item(id="2305.00001", title="From The Props", upvotes=9)]}
    card = '<article><h3><a href="/papers/2305.00002">From The Card</a></h3><div>5</div></article>'
    listing = parse_text(_page(_props_div({"user": None}, "UserMenu") + _props_div(props) + card))
    assert [(e.arxiv_id, e.title, e.upvotes) for e in listing.entries] == [("2305.00001", "From The Props", 9)]


# --- HTML: cards only --------------------------------------------------------------------------


def test_html_cards_fixture() -> None:
    listing = parse_file(CARDS_HTML)
    assert listing.layout == "html"
    got = [(e.position, e.arxiv_id, e.title, e.upvotes) for e in listing.entries]
    assert got == [
        (1, "2305.14314", "QLoRA: Efficient Finetuning of Quantized LLMs", 62),
        (2, "2305.07759", "TinyStories: How Small Can Language Models Be and Still Speak Coherent English?", 46),
        (
            3,
            "2305.16635",
            "Impossible Distillation: from Low-Quality Model to High-Quality Dataset & Model for "
            "Summarization and Paraphrasing",
            1,
        ),
        (4, "2305.99999", 'Q&A <Bench>: "Quoted" Évaluation', 3),
    ]
    for entry in listing.entries:  # a card shows no abstract, author list or date we read
        assert (entry.abstract, entry.authors, entry.org, entry.published) == (None, None, None, None)


def test_html_card_without_an_upvote_count_has_unknown_upvotes() -> None:
    """The comment count (in the link to #community) is not the upvote count."""
    card = (
        '<article><h3><a href="/papers/2305.14314">QLoRA</a></h3>'
        '<div><a href="/papers/2305.14314" class="flex"><div>&middot; 4 authors</div></a>'
        '<a href="/papers/2305.14314#community" class="flex"><svg></svg> 5</a></div></article>'
    )
    (entry,) = parse_text(_page(card)).entries
    assert (entry.arxiv_id, entry.title, entry.upvotes) == ("2305.14314", "QLoRA", None)


def test_html_card_title_with_inline_markup_inside_a_word() -> None:
    card = (
        '<article><div class="leading-none">12</div>'
        '<h3><a href="/papers/2503.04094">Poké<span class="hl">Champ</span>: an <em>Expert</em>-level'
        " Minimax\n   Language Agent</a></h3></article>"
    )
    (entry,) = parse_text(_page(card)).entries
    assert entry.title == "PokéChamp: an Expert-level Minimax Language Agent"
    assert (entry.arxiv_id, entry.upvotes) == ("2503.04094", 12)


# --- HTML: neither -----------------------------------------------------------------------------


def test_html_with_neither_props_nor_cards_is_a_parse_error(cli: Any) -> None:
    with pytest.raises(ParseError):
        parse_file(NEITHER_HTML)
    result = cli("parse", str(NEITHER_HTML))
    assert result.code == 2
    assert result.out == ""
    assert len(result.err.splitlines()) == 1
    assert str(NEITHER_HTML) in result.err


@pytest.mark.parametrize(
    "body",
    [
        _props_div({"papers": []}),  # props without dailyPapers
        _props_div({"dailyPapers": []}),  # an empty listing is not a success
        '<div data-target="DailyPapers" data-props="{not json"></div>',
        _props_div({"dailyPapers": [{"paper": {"id": "2305.14314"}}]}),  # an item without a title
        "<article><h3>No link</h3><div>3</div></article><article><h2><a href='/papers/2305.1'>h2</a></h2></article>",
        "<p>Nothing here</p>",
    ],
    ids=[
        "no-dailyPapers",
        "empty-dailyPapers",
        "props-not-json",
        "item-without-title",
        "cards-without-h3-link",
        "plain-page",
    ],
)
def test_html_pages_that_hold_no_listing(tmp_path: Path, cli: Any, body: str) -> None:
    path = tmp_path / "page.html"
    path.write_text(_page(body), encoding="utf-8")
    with pytest.raises(ParseError):
        parse_file(path)
    result = cli("parse", str(path))
    assert (result.code, result.out) == (2, "")
    assert len(result.err.splitlines()) == 1 and str(path) in result.err


def test_titles_are_folded_everywhere() -> None:
    for path in (API_JSON, PROPS_HTML, CARDS_HTML):
        for entry in parse_file(path).entries:
            assert entry.title == fold_space(entry.title)
            assert entry.abstract is None or entry.abstract == fold_space(entry.abstract)
