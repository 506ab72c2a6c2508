"""The text reader's inline reading of the usual entry (parse/text.py `_EntryReader.read_all`:
its meta first lines read once per distinct line, a line that is its own fold not folded) gives
exactly what the general reading (`_entry`, entry by entry) gives: the same TextListing, or the
same error. On the seeds, on generated listings of every text layout and style, on mutations of
them, and on full listings made of lines chosen to hit the shortcuts' edges (repeated meta lines,
white space other than single spaces, non-ASCII and unprintable characters, bad date lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperdigest.errors import ParseError
from paperdigest.parse import text as text_module
from paperdigest.parse.decode import decode_dump
from paperdigest.parse.text import TextEntry, TextListing, parse_text
from tests import listing_gen as gen
from tests.conftest import SEEDS
from tests.fuzzing import fuzz_settings, mutations

pytestmark = pytest.mark.fuzz


class _GeneralReader(text_module._EntryReader):
    """Every entry read by `_entry`, the reading the inline one must agree with."""

    def read_all(self) -> list[TextEntry]:
        entries = []
        while self.pos < len(self.units):
            entries.append(self._entry())
        return entries


@contextmanager
def _general() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(text_module, "_EntryReader", _GeneralReader)
        yield


def _outcome(text: str) -> TextListing | str:
    try:
        return parse_text(text, "dump.txt")
    except ParseError as error:
        return str(error)


def check_same(text: str) -> TextListing | str:
    inline = _outcome(text)
    with _general():
        general = _outcome(text)
    assert inline == general
    return inline


@pytest.mark.parametrize("name", sorted(path.name for path in SEEDS.iterdir()))
def test_seeds_read_inline_as_in_general(name: str) -> None:
    outcome = check_same(decode_dump((SEEDS / name).read_bytes(), name))
    assert isinstance(outcome, TextListing) and outcome.entries


def test_the_general_reader_is_used_when_patched() -> None:
    # What the comparisons rest on: under _general() read_all's inline reading does not run.
    text = "Daily Papers\n\nA  Title\n\nAn\tabstract.\n\n• 2 authors\n·\nMar 20 2\n"
    with _general():
        assert isinstance(text_module._EntryReader("x", [], False), _GeneralReader)
        listing = parse_text(text, "dump.txt")
    assert [(e.title, e.abstract, e.authors, e.upvotes) for e in listing.entries] == [
        ("A Title", "An abstract.", 2, 2)
    ]


@pytest.mark.parametrize("layout", ["full", "pairs", "dense"])
@fuzz_settings(100)
@given(listing=gen.listings(), style=gen.text_styles)
def test_generated_listings_read_inline_as_in_general(
    layout: str, listing: gen.GenListing, style: gen.TextStyle
) -> None:
    data = gen.render_text(layout, listing, style)
    check_same(decode_dump(data, "dump.txt"))


@fuzz_settings(150)
@given(listing=gen.listings(), style=gen.text_styles, edits=st.data())
def test_mutated_listings_read_inline_as_in_general(
    listing: gen.GenListing, style: gen.TextStyle, edits: st.DataObject
) -> None:
    data = edits.draw(mutations(gen.render_text("full", listing, style)))
    try:
        text = decode_dump(data, "dump.txt")
    except ParseError:
        return
    check_same(text)


_TEXTS = st.one_of(
    st.sampled_from(
        [
            "A Title",
            "A  Title",
            "A\tTitle",
            "A\x0bTitle",
            "A\x1fTitle",
            "A\x85Title",
            "A\u3000 Title",
            "Ünïcode  title",
            "Título",
            "A\x7fTitle",
            "·",
            "• 3 authors",
            "Mar 20",
            "x" * 1001,
        ]
    ),
    gen.line_text,
)
_WHO = st.sampled_from(
    [
        "• 3 authors",
        "  • 3 authors",
        "• 1 author",
        "\t• 3\x0bauthors",
        "amazon Amazon",
        "facebook AI at  Meta",
        "solo",
        "Ünï  Org",
        "·",
        "3",
    ]
)
_WHEN = st.sampled_from(["Mar 20 2", "Mar 20", "Sep 30, 2024 2", "Feb 29", "Feb 30 1", "Marc 5", "Jan 3  2", "?"])


@fuzz_settings(300)
@given(
    entries=st.lists(st.tuples(_TEXTS, _TEXTS, _WHO, _WHEN), min_size=1, max_size=12),
    header=st.booleans(),
)
def test_full_listings_of_edge_lines_read_inline_as_in_general(
    entries: list[tuple[str, str, str, str]], header: bool
) -> None:
    blocks = ["Daily Papers", "Mar 21"] if header else []
    for title, abstract, who, when in entries:
        blocks += [title, abstract, f"{who}\n·\n{when}"]
    check_same("\n\n".join(blocks) + "\n")
