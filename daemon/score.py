"""Scores with explanations: weight x log2(1 + upvotes) plus keyword hits, title above abstract,
and the AI keywords the daily-papers API gives (like the abstract, unless weighed otherwise).

Keywords and phrases match case-insensitively on whole words with simple plural folding:
"agent" matches "agents" and "multi-agent", never "reagent"; a phrase matches within one AI
keyword, never across two. A topic's excludes drop a paper from that topic. Pure functions:
papers and settings in, ScoredPaper out; ranked_papers alone reads the store, for `papers`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import math
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine

from paperdigest.config import ScoringSettings, Settings, TopicSettings
from paperdigest.errors import UsageError
from paperdigest.folding import WORD, fold_word, folded
from paperdigest.model import Paper
from paperdigest.store import queries


def matches(keyword: str, text_folded: str) -> bool:
    needle = folded(keyword)
    return needle.strip() != "" and needle in text_folded


def folded_keywords(keywords: tuple[str, ...] | None) -> str:
    """A paper's AI keywords folded for matching, each apart: "|" is no word, so no phrase spans two."""
    return "|".join(folded(keyword) for keyword in keywords) if keywords else ""


WHERE = ("title", "abstract", "ai_keywords")  # where a keyword can hit, in the order `why` names them
_WHERE_SHOWN = {"title": "title", "abstract": "abstract", "ai_keywords": "AI keywords"}


@dataclass(frozen=True, slots=True)
class Hit:
    keyword: str
    where: str  # "title" | "abstract" | "ai_keywords"


@dataclass(frozen=True, slots=True)
class ScoredPaper:
    paper: Paper
    score: float
    topic: str | None  # the topic it is filed under (best match); None when ranking everything
    upvote_points: float
    keyword_points: float
    hits: tuple[Hit, ...]
    topics: tuple[str, ...]  # every topic it matches

    def why(self) -> str:
        """'title: agent, GUI; abstract: web agent; AI keywords: agent; 12 upvotes; score 9.7'"""
        parts = []
        for where in WHERE:
            words = [h.keyword for h in self.hits if h.where == where]
            if words:
                parts.append(f"{_WHERE_SHOWN[where]}: {', '.join(words)}")
        upvotes = self.paper.upvotes
        parts.append("upvotes unknown" if upvotes is None else f"{upvotes} upvote{'s' if upvotes != 1 else ''}")
        parts.append(f"score {self.score:.1f}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, object]:
        """The `papers --topic --json` line: the paper, its score and why."""
        return {**self.paper.to_json(), "score": round(self.score, 3), "why": self.why(), "explain": self.explain()}

    def explain(self) -> dict[str, object]:
        return {
            "score": round(self.score, 3),
            "topic": self.topic,
            "topics": list(self.topics),
            "upvote_points": round(self.upvote_points, 3),
            "keyword_points": round(self.keyword_points, 3),
            "hits": [{"keyword": h.keyword, "where": h.where} for h in self.hits],
            "text": self.why(),
        }


def _keyword_points(hits: tuple[Hit, ...], weights: ScoringSettings) -> float:
    by_where = {"title": weights.title, "abstract": weights.abstract, "ai_keywords": weights.ai_keywords_weight}
    return sum(by_where[h.where] for h in hits)


def upvote_points(upvotes: int | None, weights: ScoringSettings) -> float:
    return weights.upvotes * math.log2(1 + (upvotes or 0))


def _topic_hits(topic: TopicSettings, paper: Paper) -> tuple[Hit, ...] | None:
    """The keyword hits of one topic, or None when it does not match or an exclude hits."""
    texts = (folded(paper.title), folded(paper.abstract or ""), folded_keywords(paper.ai_keywords))
    return _hits(tuple(topic.keywords), tuple(topic.exclude), *texts)


@lru_cache(maxsize=65536)
def _hits(
    keywords: tuple[str, ...], exclude: tuple[str, ...], title: str, abstract: str, ai_keywords: str
) -> tuple[Hit, ...] | None:
    """Cached: many subscribers share topics, and every one of them scores the same papers. The
    texts are folded (see `folded`); an exclude found anywhere, AI keywords included, drops it."""
    texts = (title, abstract, ai_keywords)
    if any(matches(word, text) for word in exclude for text in texts):
        return None
    hits = [
        Hit(word, where) for where, text in zip(WHERE, texts, strict=True) for word in keywords if matches(word, text)
    ]
    return tuple(hits) or None


class HitCache:
    """The keyword hits of each (topic, paper) for a batch of subscribers scored against the same
    papers: each paper is matched against each topic once, however many subscribers share it,
    and a subscriber's ranking then walks only the papers its topics matched."""

    def __init__(self) -> None:
        self._examined: dict[str, set[int]] = {}
        self._matched: dict[str, dict[int, tuple[Hit, ...]]] = {}
        self._points: dict[str, dict[int, float]] = {}  # keyword points per topic and paper
        self._weights: ScoringSettings | None = None

    def points(
        self,
        papers: list[Paper],
        name: str,
        topic: TopicSettings,
        weights: ScoringSettings,
        ids: Collection[int] | None = None,
    ) -> tuple[dict[int, tuple[Hit, ...]], dict[int, float]]:
        """matched(), and the keyword points of each matched paper under `weights`, computed once
        per topic and paper for the batch (the cache holds one set of weights: other weights
        start it afresh)."""
        if weights is not self._weights:
            self._points.clear()
            self._weights = weights
        matched = self.matched(papers, name, topic, ids)
        points = self._points.setdefault(name, {})
        if len(points) != len(matched):
            for pid, hits in matched.items():
                if pid not in points:
                    points[pid] = _keyword_points(hits, weights)
        return matched, points

    def matched(
        self, papers: list[Paper], name: str, topic: TopicSettings, ids: Collection[int] | None = None
    ) -> dict[int, tuple[Hit, ...]]:
        """Every paper (by id) the topic matches, among these papers and any examined before.
        `ids`, the papers' ids when the caller has them, skips the walk when all were examined
        (every subscriber of a batch after the first, on a shared window)."""
        examined = self._examined.setdefault(name, set())
        matched = self._matched.setdefault(name, {})
        if ids is not None and examined.issuperset(ids):
            return matched
        for paper in papers:
            if paper.id not in examined:
                examined.add(paper.id)
                hits = _topic_hits(topic, paper)
                if hits is not None:
                    matched[paper.id] = hits
        return matched


def by_upvotes(paper: Paper, weights: ScoringSettings) -> ScoredPaper:
    """A paper ranked by its upvotes alone (no topics to match)."""
    up = upvote_points(paper.upvotes, weights)
    return ScoredPaper(paper, up, None, up, 0.0, (), ())


def score_paper(paper: Paper, topics: Mapping[str, TopicSettings], weights: ScoringSettings) -> ScoredPaper | None:
    """Score one paper against the given topics; None when it matches none of them.

    With no topics at all every paper qualifies, ranked by upvotes alone.
    """
    if not topics:
        return by_upvotes(paper, weights)
    up = upvote_points(paper.upvotes, weights)
    best: tuple[float, str, tuple[Hit, ...]] | None = None
    matched = []
    for name, topic in topics.items():
        hits = _topic_hits(topic, paper)
        if hits is None:
            continue
        matched.append(name)
        points = _keyword_points(hits, weights)
        if best is None or points > best[0]:
            best = (points, name, hits)
    if best is None:
        return None
    points, name, hits = best
    return ScoredPaper(paper, up + points, name, up, points, hits, tuple(matched))


def rank(
    papers: Iterable[Paper],
    topics: Mapping[str, TopicSettings],
    weights: ScoringSettings,
) -> list[ScoredPaper]:
    """Matching papers, best first (score, then upvotes, then title for a stable order)."""
    scored = [s for s in (score_paper(p, topics, weights) for p in papers) if s is not None]
    return sorted(scored, key=lambda s: (-s.score, -(s.paper.upvotes or 0), s.paper.title))


def top(
    papers: Iterable[Paper],
    topics: Mapping[str, TopicSettings],
    weights: ScoringSettings,
    cache: HitCache | None,
    min_score: float,
    limit: int,
) -> tuple[list[ScoredPaper], int]:
    """The first `limit` of rank() among those scoring at least `min_score`, and how many scored
    that much. With a cache, only the papers the topics matched are looked at, and only the
    chosen become ScoredPapers (most of a window matches some broad keyword)."""
    if cache is None or not topics:
        ranked = [s for s in rank(papers, topics, weights) if s.score >= min_score]
        return ranked[:limit], len(ranked)
    listed = list(papers)
    index = {p.id: i for i, p in enumerate(listed)}
    best: dict[int, tuple[float, str, tuple[Hit, ...]]] = {}
    matched: dict[int, list[str]] = {}
    for name, topic in topics.items():
        hits_of, points_of = cache.points(listed, name, topic, weights, index)
        for pid, hits in hits_of.items():
            if pid not in index:
                continue
            points = points_of[pid]
            matched.setdefault(pid, []).append(name)
            if pid not in best or points > best[pid][0]:  # ties: the earlier topic keeps it
                best[pid] = (points, name, hits)
    # rank()'s order: score, upvotes, title, then the order given (its sort is stable)
    keys = []
    for pid, (points, _, _) in best.items():
        paper = listed[index[pid]]
        score = upvote_points(paper.upvotes, weights) + points
        if score >= min_score:
            keys.append((-score, -(paper.upvotes or 0), paper.title, index[pid]))
    keys.sort()
    chosen = []
    for _, _, _, i in keys[:limit]:
        paper = listed[i]
        points, name, hits = best[paper.id]
        up = upvote_points(paper.upvotes, weights)
        chosen.append(ScoredPaper(paper, up + points, name, up, points, hits, tuple(matched[paper.id])))
    return chosen, len(keys)



def ranked_papers(
    engine: Engine, settings: Settings, topic: str | None, since: dt.date | None, limit: int
) -> list[ScoredPaper]:
    """What `papers` lists, best first: the stored papers (first seen since `since`) by one topic's
    score, or, without a topic, by upvotes. The one reader here; the scoring itself is pure."""
    if topic is not None and topic not in settings.topics:
        known = ", ".join(sorted(settings.topics)) or "none"
        raise UsageError(f"--topic: unknown topic {topic!r} (known: {known})")
    with engine.connect() as conn:
        if topic is None:
            return [by_upvotes(paper, settings.scoring) for paper in queries.top_papers(conn, limit, since)]
        from paperdigest import topic_index  # noqa: PLC0415  lazy: it imports this module

        indexed = topic_index.ranked(conn, settings, topic, since, limit)
        if indexed is not None:
            return indexed
        return scanned_ranking(conn, settings, topic, since, limit)


def scanned_ranking(conn: Connection, settings: Settings, topic: str, since: dt.date | None, limit: int
                    ) -> list[ScoredPaper]:
    """`papers --topic` without the topic index (not built for this config yet): every paper that
    could make the list read and scored, stopping early when the upvotes allow. The oracle the
    index is tested against."""
    ranking = TopRanking(topic, settings.topics[topic], settings.scoring, limit)
    for upvotes_known in (True, False):
        with contextlib.closing(queries.papers_to_rank(conn, upvotes_known, since)) as rows:
            ranking.read(rows)
        if ranking.complete():
            break
    papers = queries.papers_by_ids(conn, ranking.ids())
    return ranking.scored(papers)


_uncached_hits = _hits.__wrapped__  # its cache is for a batch of digests: one paper read once here


def _stem(word: str) -> str:
    """What every word that folds to `word` starts with ('policy' <- 'policies': 'polic')."""
    return word[:-1] if word.endswith("y") else word


class TopRanking:
    """rank(...)[:limit] for one topic over papers read as queries.papers_to_rank gives them (most
    upvotes first, unknown upvotes last), in bounded memory, stopping as soon as no paper still to
    read can make the list.

    The bound: a paper with u upvotes scores at most upvote_points(u) plus every keyword hitting
    everywhere (`ceiling`); once the list holds `limit` papers and the current paper's bound is
    below the list's last score, nothing read later can enter. The ceiling adds the same weights
    in the order `_keyword_points` adds a subset of them, so float rounding cannot make a paper
    score above it. Ties keep rank()'s order: score, upvotes, title, then the id (the order
    `all_papers` gave them in before)."""

    def __init__(self, name: str, topic: TopicSettings, weights: ScoringSettings, limit: int) -> None:
        self.name, self.topic, self.weights, self.limit = name, topic, weights, limit
        self.keywords, self.exclude = tuple(topic.keywords), tuple(topic.exclude)
        # A keyword or exclude can hit a text only if the text, normalised, holds each of its words'
        # stems: a text holding none of them is not folded word by word (most titles are not).
        self.needles = tuple(tuple(_stem(w) for w in folded(k).split()) for k in (*self.keywords, *self.exclude))
        by_where = {"title": weights.title, "abstract": weights.abstract, "ai_keywords": weights.ai_keywords_weight}
        self.ceiling = 0.0
        for where in WHERE:
            for _ in self.keywords:
                self.ceiling += by_where[where]
        # (-score, -upvotes, title, id) -> the hits; pruned to the best `limit` now and then
        self.best: dict[tuple[float, int, str, int], tuple[Hit, ...]] = {}
        self.last: float | None = None  # the score of the limit-th best, once there are that many
        self.stopped = False
        self.read_rows = 0
        self.since_prune = 0

    def _prune(self) -> None:
        self.since_prune = 0
        kept = heapq.nsmallest(self.limit, self.best)
        self.best = {key: self.best[key] for key in kept}
        if len(kept) == self.limit:
            self.last = -kept[-1][0]

    def read(self, rows: Iterable[Any]) -> None:
        """Rows of (id, upvotes, title, abstract, ai_keywords), most upvotes first."""
        if self.stopped:
            return
        for pid, upvotes, title, abstract, ai_keywords in rows:
            up = upvote_points(upvotes, self.weights)
            if self.last is not None and up + self.ceiling < self.last:
                self.stopped = True
                return
            self.read_rows += 1
            hits = _uncached_hits(
                self.keywords,
                self.exclude,
                self._folded(title),
                self._folded(abstract or ""),
                "|".join(folded(keyword) for keyword in ai_keywords) if ai_keywords else "",
            )
            if hits is None:
                continue
            score = up + _keyword_points(hits, self.weights)
            self.best[(-score, -(upvotes or 0), title, pid)] = hits
            self.since_prune += 1
            # The limit-th score, first known once `limit` papers matched, rises as better ones come:
            # refreshed every so often (the bound stops sooner), and the list kept short.
            if (self.last is None and len(self.best) >= self.limit) or self.since_prune >= self.limit + 256:
                self._prune()

    def _folded(self, text: str) -> str:
        """folded(text), or "" when no keyword nor exclude can hit it: the same hits either way."""
        norm = unicodedata.normalize("NFKC", text).casefold()
        if not any(all(stem in norm for stem in needle) for needle in self.needles):
            return ""
        return " " + " ".join(fold_word(w) for w in WORD.findall(norm)) + " "

    def complete(self) -> bool:
        """Whether the papers whose upvotes are unknown (0 upvote points) can no longer enter."""
        self._prune()
        return self.stopped or (self.last is not None and self.ceiling < self.last)

    def ids(self) -> list[int]:
        self._prune()
        return [key[3] for key in self.best]

    def scored(self, papers: Mapping[int, Paper]) -> list[ScoredPaper]:
        """The list, best first, as rank() makes it (`papers`: the chosen papers by id)."""
        self._prune()
        chosen = []
        for key in sorted(self.best):
            paper, hits = papers[key[3]], self.best[key]
            up = upvote_points(paper.upvotes, self.weights)
            points = _keyword_points(hits, self.weights)
            chosen.append(ScoredPaper(paper, up + points, self.name, up, points, hits, (self.name,)))
        return chosen
