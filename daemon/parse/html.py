"""HTML listing pages: the items embedded in `data-props`, else the paper cards."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from bs4 import BeautifulSoup, ParserRejectedMarkup, Tag
from bs4.element import PageElement

from paperdigest.errors import ParseError
from paperdigest.ingest.identity import normalize_arxiv_id
from paperdigest.model import Entry
from paperdigest.parse.api_json import entries_from_items, load_json, text_field

_PAPER_HREF = re.compile(r"^/papers/([^/?#]+)")
_NUMBER = re.compile(r"^\d{1,9}$")


def parse_html(text: str, source: str) -> list[Entry]:
    try:
        soup = BeautifulSoup(_unopenable_as_text(text), "html.parser")
    except ParserRejectedMarkup as exc:  # html.parser gives up on some markup, e.g. "<![x]]>"
        why = str(exc).strip().splitlines()[-1].strip()  # bs4 puts the parser's own message last
        raise ParseError(source, None, f"HTML the parser cannot read: {why}") from None
    holder = soup.find(None, {"data-target": "DailyPapers"})
    if isinstance(holder, Tag) and holder.get("data-props"):
        props = load_json(str(holder["data-props"]), source, holder.sourceline)
        if isinstance(props, dict) and isinstance(props.get("dailyPapers"), list):
            return entries_from_items(props["dailyPapers"], source)
        raise ParseError(source, holder.sourceline, "data-props of DailyPapers has no 'dailyPapers' list")
    entries = _from_cards(soup)
    if not entries:
        raise ParseError(
            source,
            None,
            'HTML page holds no paper listing: no element with data-target="DailyPapers" and no '
            "article cards with a title link to /papers/",
        )
    return entries


# Python's html.parser (3.11) reads a construct it cannot close by searching the rest of the page
# for its end, then stepping over a few characters and searching again: a page of unclosed "<a " or
# "<!--" took time quadratic in its size (60 kB: 34 s). Such a '<' opens nothing that can close, so
# it is escaped before parsing and read, in one step, as text. Linear: each kind of end is looked up
# once, as the last one in the page.
_COMMENT_END = re.compile(r"--\s*>")  # html.parser's end of "<!--"
# The end of "<![CDATA[" and the like. "<![if ...]>" ends at "]>": one with no "]]>" after it is
# escaped too, and reads as text instead of a conditional comment (harmless here).
_SECTION_END = re.compile(r"]\s*]\s*>")


def _last_start(pattern: re.Pattern[str], text: str) -> int:
    last = -1
    for match in pattern.finditer(text):
        last = match.start()
    return last


def _unopenable_as_text(text: str) -> str:
    last_gt = text.rfind(">")
    comment_end, section_end = _last_start(_COMMENT_END, text), _last_start(_SECTION_END, text)
    pieces: list[str] = []
    start = 0
    for match in re.finditer("<", text):
        at = match.start()
        if text.startswith("<!--", at):
            closes = comment_end >= at + 4
        elif text.startswith("<![", at):
            closes = section_end >= at + 3
        else:  # a tag, an end tag, "<!...>", "<?...>": each ends at a '>'
            closes = last_gt > at
        if not closes:
            pieces += [text[start:at], "&lt;"]
            start = at + 1
    return "".join(pieces) + text[start:] if pieces else text


MAX_CARDS = 5000


def _from_cards(soup: BeautifulSoup) -> list[Entry]:
    entries: list[Entry] = []
    for article in _innermost(soup.find_all("article", limit=MAX_CARDS)):
        link = _title_link(article)
        if link is None:
            continue
        title = text_field(link.get_text())
        if not title:
            continue
        match = _PAPER_HREF.match(str(link.get("href", "")))
        entries.append(
            Entry(
                position=len(entries) + 1,
                title=title,
                abstract=None,
                authors=None,
                org=None,
                published=None,
                upvotes=_card_upvotes(article),
                arxiv_id=normalize_arxiv_id(match.group(1)) if match else None,
                line=article.sourceline,
            )
        )
    return entries


# Cards are found by walking up from their parts, once per tag: bs4's find() and select() from each of
# many nested tags walk each one's whole subtree, which made 10,000 unclosed <article> or <a> tags
# take minutes. Innermost cards do not overlap, so walking each of them is linear too.
Above = Callable[[PageElement], Tag | None]


def _nearest_above(names: tuple[str, ...], stop: Tag | None = None) -> Above:
    """A function: the nearest tag above an element with one of `names`, below `stop` (memoised)."""
    memo: dict[int, Tag | None] = {}

    def nearest(element: PageElement) -> Tag | None:
        path: list[Tag] = []
        node = element.parent
        while node is not None and node is not stop and node.name not in names and id(node) not in memo:
            path.append(node)
            node = node.parent
        if node is None or node is stop:
            found = None
        elif node.name in names:
            found = node
        else:
            found = memo[id(node)]
        for tag in path:
            memo[id(tag)] = found
        return found

    return nearest


def _innermost(articles: Iterable[PageElement]) -> list[Tag]:
    """The articles that hold no other article: an unclosed <article> holds all that follow it."""
    cards = [article for article in articles if isinstance(article, Tag)]
    article_above = _nearest_above(("article",))
    outer = {id(above) for card in cards if (above := article_above(card)) is not None}
    return [card for card in cards if id(card) not in outer]


def _title_link(article: Tag) -> Tag | None:
    """The card's first link to /papers/... inside an <h3> of the card."""
    h3_above = _nearest_above(("h3",), stop=article)
    for link in article.find_all("a"):
        if isinstance(link, Tag) and str(link.get("href", "")).startswith("/papers/") and h3_above(link):
            return link
    return None


def _card_upvotes(article: Tag) -> int | None:
    """The first bare number in the card outside its title and links (such as the comment count)."""
    title_or_link_above = _nearest_above(("h3", "a"), stop=article)
    for text in article.find_all(string=True):
        stripped = text.strip()
        if _NUMBER.match(stripped) and title_or_link_above(text) is None:
            return int(stripped)
    return None
