"""A batch's rankings: score.top() for many subscribers on one window, without walking the window
once per subscriber.

A paper's score for a subscriber is its upvote points plus the keyword points of its best topic
among the subscriber's, so it is the best of its per-topic scores. Each topic's papers of a window
are sorted once per batch, by rank()'s order (score, upvotes, title, place in the window); a
subscriber's ranking is then the merge of its topics' lists, a paper counted where it first
appears (its best score), papers already sent or withdrawn skipped, stopping at the limit:

    per (window, topic), once:  [(-score, -upvotes, title, place, id), ...] sorted
    per subscriber:             heapq.merge(its topics' lists) -> first `limit` distinct, not excluded
                                matched = |union of its topics' papers scoring >= min_score| - excluded

The result is score.top()'s, paper for paper (tests/test_digest.py compares them).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Collection, Hashable, Mapping

from paperdigest.config import ScoringSettings, TopicSettings
from paperdigest.model import Paper
from paperdigest.score import Hit, HitCache, ScoredPaper, upvote_points

_Entry = tuple[float, int, str, int, int]  # (-score, -upvotes, title, place in the window, paper id)
_Topic = tuple[list[_Entry], dict[int, tuple[Hit, ...]], dict[int, float]]  # entries, hits, keyword points


class Rankings:
    """Per-topic sorted lists of each window of a batch (a window: its key and its paper list;
    a key given with another list than before is sorted afresh)."""

    def __init__(self, weights: ScoringSettings, hits: HitCache | None = None) -> None:
        self.weights = weights
        self.hits = hits if hits is not None else HitCache()
        self._lists: dict[tuple[Hashable, str], _Topic] = {}
        self._above: dict[tuple[Hashable, str, float], frozenset[int]] = {}
        self._withdrawn: dict[Hashable, frozenset[int]] = {}
        self._up: dict[Hashable, dict[int, float]] = {}
        self._papers: dict[Hashable, list[Paper]] = {}  # the list each key was given (places index it)

    def _window(self, key: Hashable, papers: list[Paper]) -> None:
        """Start the key afresh when it comes with another list than before (a read again)."""
        if self._papers.get(key) is not papers:
            self._papers[key] = papers
            self._up[key] = {p.id: upvote_points(p.upvotes, self.weights) for p in papers}
            self._withdrawn[key] = frozenset(p.id for p in papers if p.withdrawn_at is not None)
            self._lists = {k: v for k, v in self._lists.items() if k[0] != key}
            self._above = {k: v for k, v in self._above.items() if k[0] != key}

    def _topic(self, key: Hashable, papers: list[Paper], name: str, topic: TopicSettings) -> _Topic:
        """The window's papers the topic matches, in rank()'s order; their hits and keyword points."""
        found = self._lists.get((key, name))
        if found is None:
            up = self._up[key]
            places = {p.id: i for i, p in enumerate(papers)}
            hits_of, points_of = self.hits.points(papers, name, topic, self.weights, places)
            entries = []
            for pid in hits_of:
                place = places.get(pid)
                if place is not None:
                    paper = papers[place]
                    entries.append((-(up[pid] + points_of[pid]), -(paper.upvotes or 0), paper.title, place, pid))
            entries.sort()
            found = self._lists[(key, name)] = (entries, hits_of, points_of)
        return found

    def _scoring_at_least(self, key: Hashable, name: str, entries: list[_Entry], min_score: float) -> frozenset[int]:
        """The topic's papers of the window whose score under it is at least `min_score`."""
        above = self._above.get((key, name, min_score))
        if above is None:
            cut = bisect.bisect_right(entries, -min_score, key=lambda e: e[0])  # sorted by -score
            above = self._above[(key, name, min_score)] = frozenset(e[4] for e in entries[:cut])
        return above

    def top(
        self,
        key: Hashable,
        papers: list[Paper],
        excluded: Collection[int],
        topics: Mapping[str, TopicSettings],
        min_score: float,
        limit: int,
    ) -> tuple[list[ScoredPaper], int]:
        """score.top() of the window's papers less `excluded` (ids) and the withdrawn, by `topics`
        (at least one, in the subscriber's order): the first `limit` scoring at least
        `min_score`, and how many do."""
        self._window(key, papers)
        lists = {name: self._topic(key, papers, name, topic) for name, topic in topics.items()}
        withdrawn = self._withdrawn[key]
        scoring: set[int] = set()
        for name, (entries, _, _) in lists.items():
            scoring.update(self._scoring_at_least(key, name, entries, min_score))
        scoring.difference_update(excluded)
        scoring -= withdrawn
        up = self._up[key]
        chosen: list[ScoredPaper] = []
        seen: set[int] = set()
        for negative, _, _, place, pid in heapq.merge(*(entries for entries, _, _ in lists.values())):
            if len(chosen) >= limit or -negative < min_score:
                break  # the rest score less
            if pid in seen:
                continue  # seen first where it scores best
            seen.add(pid)
            if pid in excluded or pid in withdrawn:
                continue
            # filed under the first of the subscriber's topics that gives it the most points (as top())
            points, name = 0.0, ""
            matched: list[str] = []
            for topic_name, (_, _, points_of) in lists.items():
                these = points_of.get(pid)
                if these is not None:
                    if not matched or these > points:
                        points, name = these, topic_name
                    matched.append(topic_name)
            hits = lists[name][1][pid]
            chosen.append(ScoredPaper(papers[place], up[pid] + points, name, up[pid], points, hits, tuple(matched)))
        return chosen, len(scoring)
