"""Generated listings for the fuzz tests: papers as plain data, and renderers that write them in every
format a dump comes in (the three text layouts, the daily-papers JSON, an HTML page with data-props,
an HTML page of cards), each with the entries that format must parse back to.

What a format carries (DESIGN "The data"), and so what a round trip compares:
- full:   title, abstract; with a meta block also authors *or* org, the date, upvotes (no count: 0)
- pairs:  title, abstract
- dense:  title, abstract
- json and html-props: title, abstract (None when blank), authors (the list's length), org,
          the date, upvotes, arXiv id
- html-cards: title, upvotes, arXiv id (new-style ids only: an old-style id holds a '/', which the
          card's /papers/<id> link cannot carry)
Titles and abstracts are compared after white-space folding.

The generated text stays inside what a layout can say without ambiguity; each constraint is where
the text is drawn (see `line_text`, `first_title_ok`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from paperdigest.ingest.identity import fold_space
from paperdigest.model import Entry

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MAX_UPVOTES_TEXT = 999_999_999  # a date line's count has at most nine digits
MAX_AUTHORS_TEXT = 999_999  # "• N authors" has at most six digits
MAX_COUNT_JSON = 2**31 - 1  # larger upvotes in JSON are unknown (None)

# --- text that a layout can carry ----------------------------------------------------------------

# A line of a text layout is one line: no line break (\n, \r; the other Unicode separators are kept:
# the parser splits on \n only and folds them as white space), no NUL (binary data is refused), no
# surrogate (not encodable). It must not be blank (a blank line separates blocks), and it must not be
# a structure line of the layout: exactly "·" (the meta separator) or an author count ("• 3 authors"),
# which the reader checks after a title and after an abstract (an "incomplete meta block").
STRUCTURE_LINE = re.compile(r"^(·|[•·*\-]?\s*\d+\s+authors?)$", re.I)
# The first title must also not look like the header, which the reader skips by its text: a header
# line, a bare date (the header's capture date), or "Subscribe" glued to text (the dense header).
# Python's re with re.I folds like the parser's patterns do (so "ſubscribe" is caught here too).
HEADER_LIKE = re.compile(
    r"^(new|get trending papers in your email inbox( once a day)?!?|subscribe.*|daily papers|"
    r"by ?ak and the research community|[a-z]{3}[a-z]*\.? \d{1,2}(, \d{4})?( \d+)?)$",
    re.I,
)
MAX_TITLE = 1000

_LINE_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\n\r\x00")
# Words of printable ASCII and odd characters, joined by runs of white space of every kind: folding
# must turn each run into one space and trim the ends.
_WORD = st.text(_LINE_CHARS, min_size=1, max_size=12)
_SPACE = st.sampled_from([" ", "  ", "\t", "\u00a0", "\u3000", "\u2028", "\x0b", "\x1c", " \t "])


@st.composite
def _spaced_text(draw: st.DrawFn, max_words: int) -> str:
    words = draw(st.lists(_WORD, min_size=1, max_size=max_words))
    text = words[0]
    for word in words[1:]:
        text += draw(_SPACE) + word
    return text


def _line_ok(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not STRUCTURE_LINE.match(stripped) and len(stripped) <= MAX_TITLE


def first_title_ok(text: str) -> bool:
    return not HEADER_LIKE.match(text.strip())


line_text = st.one_of(
    _spaced_text(12),
    st.text(_LINE_CHARS, min_size=1, max_size=80),
    st.sampled_from(
        [
            "A · B",
            "Mar 8",
            "Sep 30, 2024 2",
            "Daily Papers",
            "Dec 29 1",
            "  • 3 authors x",
            "Subscribe to X",
            "new",
            "• not authors",
            "3 authors and more",
            "\u202eRTL override\u202c",
            "e\u0301\u0301\u0301 combining",
            "\ufeffBOM inside",
            "ſep 3",
        ]
    ),
).filter(_line_ok)

# --- papers --------------------------------------------------------------------------------------

_ARCHIVES = ("hep-th", "math", "cs", "cond-mat", "astro-ph", "q-bio")


@st.composite
def arxiv_ids(draw: st.DrawFn, new_style_only: bool = False) -> str:
    if new_style_only or draw(st.integers(0, 4)):
        digits = draw(st.sampled_from([4, 5]))
        return f"{draw(st.integers(0, 9999)):04d}.{draw(st.integers(0, 10**digits - 1)):0{digits}d}"
    subject = draw(st.sampled_from(["", ".GT", ".AI", ".CO"]))
    return f"{draw(st.sampled_from(_ARCHIVES))}{subject}/{draw(st.integers(0, 9_999_999)):07d}"


@dataclass(frozen=True)
class Org:
    slug: str
    name: str  # the full name; may fold to nothing (then the text layout shows only the slug)

    def text_org(self) -> str:
        return fold_space(self.name) or self.slug


@dataclass(frozen=True)
class Paper:
    title: str
    abstract: str
    authors: int
    org: Org | None  # the text layout shows the org instead of the author count when there is one
    published: dt.date
    upvotes: int | None  # None: the date line carries no count (0 upvotes); JSON leaves the field out
    arxiv_id: str
    meta: bool  # the full layout: whether the entry has a meta block


@dataclass(frozen=True)
class GenListing:
    as_of: dt.date
    papers: tuple[Paper, ...]


_SLUG = st.from_regex(r"[a-z][a-z0-9\-]{0,15}", fullmatch=True)


@st.composite
def papers(draw: st.DrawFn, as_of: dt.date, first: bool) -> Paper:
    title = draw(line_text.filter(first_title_ok) if first else line_text)
    if draw(st.booleans()):
        published = draw(st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31)))
    else:  # near the capture: the layouts may leave out the year (see `render_date`)
        published = as_of - dt.timedelta(days=draw(st.integers(0, 364)))
    org = Org(draw(_SLUG), draw(st.just("") | line_text)) if draw(st.booleans()) else None
    upvotes = draw(st.none() | st.integers(0, 20) | st.integers(0, MAX_UPVOTES_TEXT))
    return Paper(
        title=title,
        abstract=draw(line_text),
        authors=draw(st.integers(0, 40) | st.integers(1, MAX_AUTHORS_TEXT)),
        org=org,
        published=published,
        upvotes=upvotes,
        arxiv_id=draw(arxiv_ids()),
        meta=draw(st.booleans()),
    )


@st.composite
def listings(draw: st.DrawFn, max_papers: int = 12) -> GenListing:
    as_of = draw(st.dates(dt.date(1001, 1, 1), dt.date(9999, 12, 31)))
    count = draw(st.integers(1, max_papers))
    return GenListing(as_of, tuple(draw(papers(as_of, first=index == 0)) for index in range(count)))


def entry(position: int, **fields: Any) -> Entry:
    base: dict[str, Any] = dict.fromkeys(("abstract", "authors", "org", "published", "upvotes", "arxiv_id"))
    base.update(fields)
    return Entry(position=position, **base)


# --- text layouts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextStyle:
    """How a text dump is written: none of it changes what the dump says."""

    newline: str
    blank_lines: int  # blank lines between blocks (one or more)
    pad: str  # leading and trailing white space on every line
    header_date: bool
    glued: bool  # dense: "Subscribe" glued to the first title
    month_style: int  # 0 "Mar", 1 "March", 2 "MAR", 3 "Mar."
    zero_day: bool  # "Mar 05"
    bullet: str
    encoding: str  # utf-8, utf-8-sig, utf-16


text_styles = st.builds(
    TextStyle,
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    blank_lines=st.integers(1, 3),
    pad=st.sampled_from(["", " ", "\t", "  \t"]),
    header_date=st.booleans(),
    glued=st.booleans(),
    month_style=st.integers(0, 3),
    zero_day=st.booleans(),
    bullet=st.sampled_from(["  • ", "• ", "", "* ", "- ", "·"]),
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16"]),
)


def render_date(paper: Paper, as_of: dt.date, style: TextStyle) -> str:
    """'Mar 20 2', 'Sep 30, 2024 2', 'May 6': the year only when the date is not within the year
    before the capture (or always, for variety, when the paper's upvotes are odd)."""
    day = paper.published
    name = MONTH_NAMES[day.month - 1]
    month = (name[:3], name, name[:3].upper(), name[:3] + ".")[style.month_style]
    text = f"{month} {day.day:02d}" if style.zero_day else f"{month} {day.day}"
    recent = dt.timedelta(0) <= as_of - day < dt.timedelta(days=365)
    if not recent or (paper.upvotes or 0) % 2:
        text += f", {day.year:04d}"
    if paper.upvotes is not None:
        text += f" {paper.upvotes}"
    return text


def _meta_lines(paper: Paper, as_of: dt.date, style: TextStyle) -> list[str]:
    if paper.org is None:
        who = f"{style.bullet}{paper.authors} author{'' if paper.authors == 1 else 's'}"
    else:
        who = f"{paper.org.slug} {paper.org.name}".rstrip() if paper.org.name.strip() else paper.org.slug
    return [who, "·", render_date(paper, as_of, style)]


def render_text(layout: str, listing: GenListing, style: TextStyle) -> bytes:
    pad = style.pad
    if layout == "dense":
        lines = ["Get trending papers in your email inbox!"]
        body = [line for paper in listing.papers for line in (paper.title.strip(), paper.abstract)]
        if style.glued:
            body[0] = "Subscribe" + body[0]
        else:
            lines.append("Subscribe")
        text = style.newline.join(pad + line + pad for line in lines + body)
    else:
        blocks: list[list[str]] = [
            ["new"],
            ["Get trending papers in your email inbox!"],
            ["Subscribe"],
            ["Daily Papers"],
            ["byAK and the research community"],
        ]
        if style.header_date:
            blocks.append([f"{MONTH_NAMES[listing.as_of.month - 1][:3]} {listing.as_of.day}"])
        for paper in listing.papers:
            blocks += [[paper.title], [paper.abstract]]
            if layout == "full" and paper.meta:
                blocks.append(_meta_lines(paper, listing.as_of, style))
        separator = style.newline * (style.blank_lines + 1)
        text = separator.join(style.newline.join(pad + line + pad for line in block) for block in blocks)
        text += style.newline
    return text.encode(style.encoding)


def expected_text(layout: str, listing: GenListing) -> list[Entry]:
    entries = []
    for position, paper in enumerate(listing.papers, 1):
        fields: dict[str, Any] = {"title": fold_space(paper.title), "abstract": fold_space(paper.abstract)}
        if layout == "full" and paper.meta:
            fields["published"] = paper.published
            fields["upvotes"] = paper.upvotes or 0
            if paper.org is None:
                fields["authors"] = paper.authors
            else:
                fields["org"] = paper.org.text_org()
        entries.append(entry(position, **fields))
    return entries


def text_layout_of(layout: str, listing: GenListing) -> str:
    """The layout the parser reports: a full listing without a single meta block is a pairs listing."""
    if layout == "full" and not any(paper.meta for paper in listing.papers):
        return "pairs"
    return layout


# --- the daily-papers JSON -----------------------------------------------------------------------


@dataclass(frozen=True)
class JsonStyle:
    """How an API item is written: which optional fields are there, and where."""

    id_form: int  # 0 as is, 1 "arXiv:" prefix, 2 a version suffix
    wrap: bool  # title and summary with hard line breaks
    has_summary: bool
    has_date: bool
    has_upvotes: bool
    org_on_item: bool  # the organization on the item rather than on the paper
    offset: str  # the time zone of publishedAt
    code: int = 0  # githubRepo: 0 absent, 1 null, 2 an https URL with stars, 3 a URL that is no web link
    withdrawn: bool = False  # paper.withdrawnAt set
    ai_summary: bool = False


# githubRepo values a digest must never link to: kept out by the parser.
NOT_WEB_URLS = ("javascript:alert(1)", "/relative/path", "https://", "ftp://example.org/x", "https://a b.org/")


@st.composite
def json_styles(draw: st.DrawFn, count: int) -> list[JsonStyle]:
    style = st.builds(
        JsonStyle,
        id_form=st.integers(0, 2),
        wrap=st.booleans(),
        has_summary=st.integers(0, 5).map(bool),
        has_date=st.integers(0, 5).map(bool),
        has_upvotes=st.integers(0, 5).map(bool),
        org_on_item=st.booleans(),
        offset=st.sampled_from(["Z", "+00:00", "-07:00", "+14:00", ".000Z", ".123456+05:30"]),
        code=st.integers(0, 3),
        withdrawn=st.integers(0, 4).map(lambda n: n == 0),
        ai_summary=st.booleans(),
    )
    return [draw(style) for _ in range(count)]


def _wrapped(text: str, wrap: bool) -> str:
    return re.sub(r"(\S) (\S)", "\\1\n  \\2", text, count=3) if wrap else text


def api_item(paper: Paper, style: JsonStyle) -> dict[str, Any]:
    arxiv = (paper.arxiv_id, f"arXiv:{paper.arxiv_id}", f"{paper.arxiv_id}v{paper.authors % 9 + 1}")[style.id_form]
    body: dict[str, Any] = {
        "id": arxiv,
        "authors": [{"_id": f"{i:024x}", "name": f"Author {i}", "hidden": False} for i in range(paper.authors % 41)],
        "title": _wrapped(paper.title, style.wrap),
        "ai_keywords": ["agents", paper.abstract[:10]],
        "githubRepo": None,
    }
    if style.has_summary:
        body["summary"] = _wrapped(paper.abstract, style.wrap)
    if style.has_date:
        body["publishedAt"] = f"{paper.published.isoformat()}T17:50:33{style.offset}"
    if style.has_upvotes and paper.upvotes is not None:
        body["upvotes"] = paper.upvotes
    if style.code == 0:
        del body["githubRepo"]
    elif style.code == 2:
        body["githubRepo"] = f"https://github.com/example/repo-{paper.authors}"
        body["githubStars"] = paper.authors * 1000
    elif style.code == 3:
        body["githubRepo"] = NOT_WEB_URLS[paper.authors % len(NOT_WEB_URLS)]
    if style.withdrawn:
        body["withdrawnAt"] = f"{paper.published.isoformat()}T08:00:00{style.offset}"
    if style.ai_summary:
        body["ai_summary"] = _wrapped(paper.abstract, style.wrap)
    item: dict[str, Any] = {"paper": body, "numComments": paper.authors % 7, "submittedBy": {"name": "akhaliq"}}
    if paper.org is not None:
        org = {"name": paper.org.slug, "fullname": paper.org.name}
        (item if style.org_on_item else body)["organization"] = org
    return item


def expected_api(listing: GenListing, styles: list[JsonStyle]) -> list[Entry]:
    entries = []
    for position, (paper, style) in enumerate(zip(listing.papers, styles, strict=True), 1):
        upvotes = paper.upvotes if style.has_upvotes and paper.upvotes is not None else None
        org = None
        if paper.org is not None:
            org = fold_space(paper.org.name) or fold_space(paper.org.slug) or None
        entries.append(
            entry(
                position,
                title=fold_space(paper.title),
                abstract=fold_space(paper.abstract) if style.has_summary else None,
                authors=paper.authors % 41,
                org=org,
                published=paper.published if style.has_date else None,
                upvotes=upvotes if upvotes is None or upvotes <= MAX_COUNT_JSON else None,
                arxiv_id=paper.arxiv_id,
                author_names=tuple(f"Author {i}" for i in range(paper.authors % 41)) or None,
                ai_summary=fold_space(paper.abstract) or None if style.ai_summary else None,
                ai_keywords=tuple(k for k in ("agents", fold_space(paper.abstract[:10])) if k),
                github_repo=f"https://github.com/example/repo-{paper.authors}" if style.code == 2 else None,
                github_stars=paper.authors * 1000 if style.code == 2 else None,
                comments=paper.authors % 7,
                withdrawn_at=paper.published if style.withdrawn else None,
            )
        )
    return entries


@dataclass(frozen=True)
class Encoding:
    indent: int | None
    ascii_only: bool
    bom: bool
    crlf: bool
    utf16: bool


encodings = st.builds(
    Encoding,
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
    bom=st.booleans(),
    crlf=st.booleans(),
    utf16=st.integers(0, 5).map(lambda n: n == 0),
)


def encode(text: str, enc: Encoding) -> bytes:
    if enc.crlf:
        text = text.replace("\n", "\r\n")
    if enc.utf16:
        return text.encode("utf-16")
    return (b"\xef\xbb\xbf" if enc.bom else b"") + text.encode("utf-8")


def render_json(items: list[dict[str, Any]], enc: Encoding, wrapped: bool) -> bytes:
    data: Any = {"dailyPapers": items} if wrapped else items
    return encode(json.dumps(data, indent=enc.indent, ensure_ascii=enc.ascii_only), enc)


# --- HTML pages ----------------------------------------------------------------------------------

_HEAD = (
    "<!doctype html>\n<html class=''>\n<head><meta charset='utf-8' /><title>Daily Papers - Hugging Face</title>\n"
    '<script>window.hubConfig = {"features": {"signupDisabled": false}, "count": 42};</script></head>\n'
    "<body class='flex flex-col'>\n<header><nav><a href='/'>Hugging Face</a> <a href='/papers'>Papers</a></nav>"
    "</header>\n<main>\n"
)
_FOOT = "\n</main>\n<footer><a href='/papers'>Daily Papers</a> 2023</footer>\n</body>\n</html>\n"


def props_attribute(props: Any, quote: str) -> str:
    return f"data-props={quote}{html.escape(json.dumps(props), quote=True)}{quote}"


def render_props_page(items: list[dict[str, Any]], listing: GenListing, enc: Encoding, quote: str) -> bytes:
    """The items embedded in data-props (as the real pages do), with the cards rendered below them."""
    page = (
        _HEAD
        + f"<div class='SVELTE_HYDRATER contents' data-target='UserMenu' {props_attribute({'user': None}, quote)}>"
        + "</div>\n"
        + "<div class='SVELTE_HYDRATER contents' data-target=\"DailyPapers\" "
        + f"{props_attribute({'dailyPapers': items}, quote)}></div>\n"
        + "".join(card(paper, CardStyle(True, False, 0)) for paper in listing.papers)
        + _FOOT
    )
    return encode(page, enc)


@dataclass(frozen=True)
class CardStyle:
    upvotes: bool  # the card shows its upvote count
    span: bool  # a word of the title wrapped in a <span>
    split: int  # where the span starts


card_styles = st.builds(CardStyle, upvotes=st.integers(0, 4).map(bool), span=st.booleans(), split=st.integers(0, 80))


def card(paper: Paper, style: CardStyle, arxiv_id: str | None = None) -> str:
    arxiv = arxiv_id or paper.arxiv_id
    title = paper.title
    if style.span and len(title) > 1:
        cut = style.split % len(title)
        shown = f"{html.escape(title[:cut])}<span class='hl'>{html.escape(title[cut:])}</span>"
    else:
        shown = html.escape(title)
    count = f"<div class='leading-none'>{paper.upvotes or 0}</div>" if style.upvotes else ""
    return (
        f"<article class='relative flex'>\n<a href='/papers/{arxiv}' class='block'><img src='x.png' alt=''/></a>\n"
        f"<div class='shrink-0'><label><input type='checkbox'/><svg viewBox='0 0 12 12'></svg>{count}</label></div>\n"
        f"<h3 class='mb-1'>\n<a href='/papers/{arxiv}' class='line-clamp-3'>{shown}</a>\n</h3>\n"
        f"<div><a href='/papers/{arxiv}'><div>&middot; {paper.authors} authors</div></a>\n"
        f"<a href='/papers/{arxiv}#community'><svg></svg> {paper.authors % 7}</a></div>\n</article>\n"
    )


def render_cards_page(listing: GenListing, styles: list[CardStyle], ids: list[str], enc: Encoding) -> bytes:
    promo = (
        "<article class='rounded-xl'><h3>Get trending papers in your email inbox!</h3><p>Join 10000 readers</p>"
        "<a href='/subscribe'>Subscribe</a></article>\n"
    )
    cards = "".join(
        card(paper, style, arxiv) for paper, style, arxiv in zip(listing.papers, styles, ids, strict=True)
    )
    page = _HEAD + "<section><h1>Daily Papers</h1><time>May 31</time>\n" + promo + cards + "</section>" + _FOOT
    return encode(page, enc)


def expected_cards(listing: GenListing, styles: list[CardStyle], ids: list[str]) -> list[Entry]:
    return [
        entry(
            position,
            title=fold_space(paper.title),
            upvotes=(paper.upvotes or 0) if style.upvotes else None,
            arxiv_id=arxiv,
        )
        for position, (paper, style, arxiv) in enumerate(zip(listing.papers, styles, ids, strict=True), 1)
    ]


# --- everything, for the mutation fuzzing ----------------------------------------------------------


@st.composite
def any_rendered(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, bytes) of a generated listing in any format: the seeds of the mutation fuzzing."""
    listing = draw(listings(max_papers=6))
    kind = draw(st.sampled_from(["full", "pairs", "dense", "json", "props", "cards"]))
    if kind in ("full", "pairs", "dense"):
        return "dump.txt", render_text(kind, listing, draw(text_styles))
    enc = draw(encodings)
    styles = draw(json_styles(len(listing.papers)))
    items = [api_item(paper, style) for paper, style in zip(listing.papers, styles, strict=True)]
    if kind == "json":
        return "api.json", render_json(items, enc, draw(st.booleans()))
    if kind == "props":
        return "page.html", render_props_page(items, listing, enc, draw(st.sampled_from(['"', "'"])))
    styles = [draw(card_styles) for _ in listing.papers]
    ids = [draw(arxiv_ids(new_style_only=True)) for _ in listing.papers]
    return "page.html", render_cards_page(listing, styles, ids, enc)

