"""HTML listing pages: the items embedded in `data-props`, else the paper cards."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

from paperdigest.errors import ParseError
from paperdigest.ingest.identity import fold_space, normalize_arxiv_id
from paperdigest.model import Entry
from paperdigest.parse.api_json import entries_from_items, load_json

_PAPER_HREF = re.compile(r"^/papers/([^/?#]+)")
_NUMBER = re.compile(r"^\d{1,9}$")


def parse_html(text: str, source: str) -> list[Entry]:
    soup = BeautifulSoup(text, "html.parser")
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


MAX_CARDS = 5000


def _from_cards(soup: BeautifulSoup) -> list[Entry]:
    entries: list[Entry] = []
    for article in soup.find_all("article", limit=MAX_CARDS):
        if not isinstance(article, Tag) or article.find("article") is not None:
            continue  # only innermost cards: an unclosed <article> must not make the walk quadratic
        link = article.select_one('h3 a[href^="/papers/"]')
        if link is None:
            continue
        title = fold_space(link.get_text())
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


def _card_upvotes(article: Tag) -> int | None:
    """The first bare number in the card outside its title and links: the upvote count."""
    skipped = {id(text) for tag in article.find_all(["h3", "a"]) for text in tag.find_all(string=True)}
    for text in article.find_all(string=True):
        if id(text) in skipped:
            continue  # the title, and links such as the comment count
        stripped = text.strip()
        if _NUMBER.match(stripped):
            return int(stripped)
    return None
