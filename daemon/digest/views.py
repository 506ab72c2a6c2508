"""What a paper shows in a digest: its links, who wrote it, the facts, a summary, why it is there.

    title    -> the paper's page (huggingface.co/papers/ID), else an arXiv search by title
    byline   =  the first three authors "et al." (all when three or fewer), or their count; the organisation
    facts    =  date, upvotes, comments (what the listings said)
    links    =  arXiv abstract, PDF, code (with its stars), project page
    summary  =  the AI summary (marked as such), else the abstract cut at a sentence
    HTML     :  the keywords that matched marked in the summary

The same for every subscriber, but for the marks and the explanation (cached by paper).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from markupsafe import Markup, escape

from paperdigest.folding import folded
from paperdigest.model import Paper
from paperdigest.score import ScoredPaper, matches

EXCERPT_CHARS = 300  # an abstract is cut at the last sentence end within this, when it is longer
AUTHORS_SHOWN = 3
# A sentence ends at . ! or ? followed by space and a capital, a digit or an opening quote/bracket.
_SENTENCE_END = re.compile(r"[.!?](?=\s+[\"'(\[“‘]?[A-Z0-9])")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Link:
    label: str  # HTML: "arXiv", "PDF", "Code", "Project page"
    url: str
    note: str = ""  # HTML, after the link: "★ 10,939"
    legend: str = ""  # text: what the URL on its own line is ("code (10,939 stars)")


@dataclass(frozen=True, slots=True)
class PaperView:
    title: str
    url: str  # the title's link
    arxiv_url: str | None
    byline: str  # "Tim Dettmers, Artidoro Pagnoni, Ari Holtzman et al. · University of Washington", or ""
    published: str
    upvotes: str
    facts: str  # "May 23, 2023 · 62 upvotes · 10 comments", leaving out what the listing did not say
    meta: str  # byline and facts in one line (what 0.1's templates show)
    links: tuple[Link, ...]  # beside the title's: arXiv abstract, PDF, code, project page
    summary: str  # the AI summary, else the abstract cut at a sentence
    summary_is_ai: bool
    summary_html: Markup  # the summary escaped, the keywords that matched marked
    excerpt: str  # the summary (0.1's templates)
    legend: str  # text: "paper page, arXiv abstract, PDF, code (10,939 stars)": the URLs below, in order
    urls: tuple[str, ...]  # text: the title's URL, then the links', each on a line of its own
    why: str
    score: str


def paper_url(title: str, arxiv_id: str | None) -> str:
    """The paper's page when its arXiv id is known, otherwise a title search on arXiv."""
    if arxiv_id:
        return f"https://huggingface.co/papers/{quote_plus(arxiv_id)}"
    return f"https://arxiv.org/search/?query={quote_plus(title)}&searchtype=title"


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The text, cut at the last sentence end within `limit` when it is longer; a first sentence
    longer than that is kept up to half as long again, else cut at a word, marked by "…"."""
    if not text:
        return ""
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    within = [end for end in ends if end <= limit]
    if within:
        return text[: within[-1]]
    if ends and ends[0] <= limit * 3 // 2:
        return text[: ends[0]]
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def byline(paper: Paper) -> str:
    names = paper.author_names
    if names:
        authors = ", ".join(names[:AUTHORS_SHOWN]) + (" et al." if len(names) > AUTHORS_SHOWN else "")
    elif paper.authors is not None:
        authors = f"{paper.authors} author{'s' if paper.authors != 1 else ''}"
    else:
        authors = ""
    return " · ".join(part for part in (authors, paper.org or "") if part)


def links(paper: Paper) -> tuple[Link, ...]:
    found = []
    if paper.arxiv_id:
        arxiv = quote(paper.arxiv_id, safe="/.")
        found.append(Link("arXiv", f"https://arxiv.org/abs/{arxiv}", legend="arXiv abstract"))
        found.append(Link("PDF", f"https://arxiv.org/pdf/{arxiv}", legend="PDF"))
    if paper.github_repo:
        stars = f"{paper.github_stars:,}" if paper.github_stars is not None else ""
        legend = f"code ({stars} star{'' if paper.github_stars == 1 else 's'})" if stars else "code"
        found.append(Link("Code", paper.github_repo, f"★ {stars}" if stars else "", legend))
    if paper.project_page:
        found.append(Link("Project page", paper.project_page, legend="project page"))
    return tuple(found)


_VIEWS: dict[tuple[Paper, float, tuple[Any, ...]], PaperView] = {}
VIEWS_KEPT = 16384


def view(scored: ScoredPaper) -> PaperView:
    """The paper as this subscriber's digest shows it: the keywords it matched marked, and why.
    (Cached by paper, score and hits, all a view depends on: a batch's digests show the same
    papers with the same scores again and again, 154 distinct views in the benchmark's 23,310.)"""
    key = (scored.paper, scored.score, scored.hits)
    found = _VIEWS.get(key)
    if found is None:
        if len(_VIEWS) >= VIEWS_KEPT:
            _VIEWS.clear()
        found = _VIEWS[key] = _view(scored)
    return found


def _view(scored: ScoredPaper) -> PaperView:
    shown = _paper_fields(scored.paper)
    keywords = tuple(dict.fromkeys(hit.keyword for hit in scored.hits))
    summary_html = marked(shown["summary"], keywords)
    return PaperView(**shown, summary_html=summary_html, why=scored.why(), score=f"{scored.score:.1f}")


_PER_SUBSCRIBER = ("summary_html", "why", "score")


@functools.lru_cache(maxsize=4096)
def _paper_fields(paper: Paper) -> dict[str, Any]:
    """_paper_view's fields but those view() sets per subscriber (dataclasses.replace costs
    several times more than building the view from them)."""
    shown = _paper_view(paper)
    return {f.name: getattr(shown, f.name) for f in dataclasses.fields(shown) if f.name not in _PER_SUBSCRIBER}


@functools.lru_cache(maxsize=4096)
def _paper_view(paper: Paper) -> PaperView:
    """What a paper shows whoever it goes to (cached: a batch of digests repeats the same papers)."""
    facts = []
    if paper.published:
        facts.append(paper.published.strftime("%b %-d, %Y"))
    if paper.upvotes is not None:
        facts.append(f"{paper.upvotes} upvote{'s' if paper.upvotes != 1 else ''}")
    if paper.comments:
        facts.append(f"{paper.comments} comment{'s' if paper.comments != 1 else ''}")
    by = byline(paper)
    summary = paper.ai_summary or excerpt(paper.abstract)
    url = paper_url(paper.title, paper.arxiv_id)
    extra = links(paper)
    legend = ["paper page" if paper.arxiv_id else "arXiv search by title", *(link.legend for link in extra)]
    return PaperView(
        title=paper.title,
        url=url,
        arxiv_url=extra[0].url if paper.arxiv_id else None,
        byline=by,
        published=paper.published.strftime("%b %-d, %Y") if paper.published else "date unknown",
        upvotes="?" if paper.upvotes is None else str(paper.upvotes),
        facts=" · ".join(facts) or "no date or upvotes listed",
        meta=" · ".join(part for part in (by, *facts) if part) or "no authors, date or upvotes listed",
        links=extra,
        summary=summary,
        summary_is_ai=bool(paper.ai_summary),
        summary_html=Markup(escape(summary)),
        excerpt=summary,
        legend=", ".join(legend),
        urls=(url, *(link.url for link in extra)),
        why="",
        score="",
    )


@functools.lru_cache(maxsize=16384)
def marked(text: str, keywords: tuple[str, ...]) -> Markup:
    """`text` escaped, each run of words that a keyword matches (as score.py matches: whole words,
    case and plural folded) inside <mark>."""
    haystack = folded(text)
    keywords = tuple(k for k in keywords if matches(k, haystack))  # most summaries match few, or none
    if not keywords:
        return escape(text)
    words = [(m.start(), m.end(), folded(m.group()).strip()) for m in _WORD.finditer(text)]
    spans: list[tuple[int, int]] = []
    for keyword in keywords:
        needle = folded(keyword).split()
        if not needle:
            continue
        size = len(needle)
        for at in range(len(words) - size + 1):
            if all(words[at + k][2] == needle[k] for k in range(size)):
                spans.append((words[at][0], words[at + size - 1][1]))
    pieces: list[str] = []
    done = 0
    for start, end in _merged(spans):
        pieces += [escape(text[done:start]), Markup("<mark>"), escape(text[start:end]), Markup("</mark>")]
        done = end
    pieces.append(escape(text[done:]))
    return Markup("").join(pieces)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
