"""Keyword matching, plural folding, excludes, the score and its explanation."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperdigest.config import ScoringSettings, TopicSettings
from paperdigest.model import Paper, RawDump
from paperdigest.parse import parse_dump
from paperdigest.score import HitCache, folded, matches, rank, score_paper, top
from tests.conftest import SEEDS

WEIGHTS = ScoringSettings()


def paper(title: str, abstract: str = "", upvotes: int | None = 0, pid: int = 1) -> Paper:
    day = dt.date(2026, 1, 1)
    return Paper(pid, title, abstract, 3, None, None, upvotes, None, day, day)


@pytest.mark.parametrize(
    ("keyword", "text", "expected"),
    [
        ("agent", "Agents that browse", True),
        ("agent", "a multi-agent system", True),
        ("agent", "reagent chemistry", False),
        ("agent", "agentic workflows", False),
        ("agents", "one agent", True),
        ("GUI", "GUIs and screens", True),
        ("web agent", "Web-Agents in the wild", True),
        ("web agent", "web pages and an agent", False),
        ("computer use", "COMPUTER USE benchmark", True),
        ("policy", "robot policies", True),
        ("box", "bounding boxes", True),
        ("LLM", "LLMs reason", True),
        ("vision-language-action", "Vision Language Action models", True),
    ],
)
def test_keyword_matching(keyword: str, text: str, expected: bool) -> None:
    assert matches(keyword, folded(text)) is expected


@given(st.text(alphabet=st.characters(categories=["Ll", "Lu"]), min_size=1, max_size=12))
def test_a_word_always_matches_itself_and_its_plural(word: str) -> None:
    assert matches(word, folded(f"some {word} here"))
    if len(word) >= 2 and word.isascii() and not word.lower().endswith("s"):
        assert matches(word, folded(f"some {word}s here"))


def test_score_parts_and_explanation() -> None:
    topics = {"agents": TopicSettings(keywords=["agent", "GUI"])}
    scored = score_paper(paper("A GUI Agent", "An agent for screens", upvotes=7), topics, WEIGHTS)
    assert scored is not None
    assert scored.upvote_points == pytest.approx(math.log2(8))
    assert scored.keyword_points == pytest.approx(3.0 + 3.0 + 1.0)  # title: agent, GUI; abstract: agent
    assert scored.score == pytest.approx(math.log2(8) + 7.0)
    assert scored.why() == "title: agent, GUI; abstract: agent; 7 upvotes; score 10.0"
    assert scored.explain()["hits"] == [
        {"keyword": "agent", "where": "title"},
        {"keyword": "GUI", "where": "title"},
        {"keyword": "agent", "where": "abstract"},
    ]


def test_title_hits_weigh_more_than_abstract_hits() -> None:
    topics = {"t": TopicSettings(keywords=["robot"])}
    in_title = score_paper(paper("Robot arms", "nothing"), topics, WEIGHTS)
    in_abstract = score_paper(paper("Arms", "a robot"), topics, WEIGHTS)
    assert in_title is not None and in_abstract is not None
    assert in_title.score > in_abstract.score


def test_excludes_drop_a_paper_from_that_topic() -> None:
    topics = {"agents": TopicSettings(keywords=["agent"], exclude=["survey"])}
    assert score_paper(paper("A Survey of Agents"), topics, WEIGHTS) is None
    both = {**topics, "all": TopicSettings(keywords=["agent"])}
    scored = score_paper(paper("A Survey of Agents"), both, WEIGHTS)
    assert scored is not None and scored.topic == "all" and scored.topics == ("all",)


def test_no_match_no_score_and_no_topics_means_everything() -> None:
    assert score_paper(paper("Protein folding"), {"a": TopicSettings(keywords=["agent"])}, WEIGHTS) is None
    scored = score_paper(paper("Protein folding", upvotes=3), {}, WEIGHTS)
    assert scored is not None and scored.score == pytest.approx(2.0)


def test_filed_under_the_best_topic() -> None:
    topics = {"robots": TopicSettings(keywords=["robot"]), "agents": TopicSettings(keywords=["agent"])}
    scored = score_paper(paper("Agent", "a robot agent"), topics, WEIGHTS)
    assert scored is not None and scored.topic == "agents" and set(scored.topics) == {"robots", "agents"}


def test_rank_orders_by_score_then_upvotes() -> None:
    topics = {"a": TopicSettings(keywords=["agent"])}
    papers = [
        paper("Agent one", upvotes=1, pid=1),
        paper("Agent two", upvotes=15, pid=2),
        paper("Nothing", upvotes=100, pid=3),
        paper("An agent in the abstract", "agent", upvotes=15, pid=4),
    ]
    assert [s.paper.id for s in rank(papers, topics, WEIGHTS)] == [4, 2, 1]


def test_unknown_upvotes_score_as_zero_and_say_so() -> None:
    scored = score_paper(paper("Agent", upvotes=None), {"a": TopicSettings(keywords=["agent"])}, WEIGHTS)
    assert scored is not None and scored.upvote_points == 0 and "upvotes unknown" in scored.why()


SEED_PAPERS = [
    paper(e.title, e.abstract or "", e.upvotes, pid=i)
    for i, e in enumerate(
        (e for seed in sorted(SEEDS.iterdir()) for e in parse_dump(RawDump(seed.name, seed.read_bytes())).entries),
        1,
    )
]
KEYWORDS = ["agent", "model", "robot", "benchmark", "reasoning", "video", "language model", "survey", "diffusion"]


@given(
    # unique: the config refuses a keyword twice in one topic
    topic_words=st.lists(st.lists(st.sampled_from(KEYWORDS), min_size=1, max_size=3, unique=True), min_size=1,
                         max_size=4),
    exclude=st.lists(st.sampled_from(KEYWORDS), max_size=1),
    min_score=st.sampled_from([0.0, 2.0, 5.0]),
    limit=st.integers(1, 60),
    sent=st.sets(st.integers(1, len(SEED_PAPERS)), max_size=40),
    title_weight=st.sampled_from([3.0, 0.1, 1.0]),
)
def test_the_batch_ranking_picks_what_rank_picks(
    topic_words: list[list[str]],
    exclude: list[str],
    min_score: float,
    limit: int,
    sent: set[int],
    title_weight: float,
) -> None:
    """top() with a cache shared across subscribers == rank(), thresholded and cut, one by one."""
    weights = ScoringSettings(title=title_weight, abstract=0.1)
    topics = {
        f"t{i}": TopicSettings(keywords=words, exclude=exclude if i == 0 else []) for i, words in enumerate(topic_words)
    }
    cache = HitCache()
    top(SEED_PAPERS[::2], topics, weights, cache, 0.0, 5)  # another subscriber's batch warmed it
    fresh = [p for p in SEED_PAPERS if p.id not in sent]
    ranked = [s for s in rank(fresh, topics, weights) if s.score >= min_score]
    assert top(fresh, topics, weights, cache, min_score, limit) == (ranked[:limit], len(ranked))
    assert top(fresh, topics, weights, None, min_score, limit) == (ranked[:limit], len(ranked))


# --- the AI keywords of the daily-papers API (issue 12) ------------------------------------------


def with_keywords(title: str, keywords: tuple[str, ...] | None, abstract: str = "", upvotes: int = 0) -> Paper:
    day = dt.date(2026, 1, 1)
    return Paper(1, title, abstract, 3, None, None, upvotes, "2305.14314", day, day, ai_keywords=keywords)


def test_a_keyword_matches_the_ai_keywords_and_says_so() -> None:
    topics = {"quant": TopicSettings(keywords=["quantization", "low rank adapter"])}
    qlora = with_keywords("QLoRA", ("4-bit quantization", "Low Rank Adapters", "Guanaco"))
    scored = score_paper(qlora, topics, WEIGHTS)
    assert scored is not None
    assert [(h.keyword, h.where) for h in scored.hits] == [
        ("quantization", "ai_keywords"),
        ("low rank adapter", "ai_keywords"),
    ]
    assert scored.keyword_points == pytest.approx(2 * WEIGHTS.abstract)  # by default, like the abstract
    assert "AI keywords: quantization, low rank adapter" in scored.why()
    assert scored.explain()["hits"] == [
        {"keyword": "quantization", "where": "ai_keywords"},
        {"keyword": "low rank adapter", "where": "ai_keywords"},
    ]
    assert score_paper(with_keywords("QLoRA", None), topics, WEIGHTS) is None  # nothing else matched


def test_a_phrase_never_spans_two_ai_keywords() -> None:
    topics = {"t": TopicSettings(keywords=["adapter guanaco"])}
    assert score_paper(with_keywords("X", ("Low Rank Adapters", "Guanaco")), topics, WEIGHTS) is None
    assert score_paper(with_keywords("X", ("adapter Guanaco",)), topics, WEIGHTS) is not None


def test_the_ai_keywords_weight_is_its_own_or_the_abstracts() -> None:
    topics = {"t": TopicSettings(keywords=["agent"])}
    paper_ = with_keywords("X", ("web agents",))
    default = score_paper(paper_, topics, ScoringSettings(abstract=2.5))
    own = score_paper(paper_, topics, ScoringSettings(abstract=2.5, ai_keywords=4.0))
    off = score_paper(paper_, topics, ScoringSettings(ai_keywords=0.0))
    assert default is not None and own is not None and off is not None
    assert (default.keyword_points, own.keyword_points, off.keyword_points) == (2.5, 4.0, 0.0)


def test_an_exclude_among_the_ai_keywords_drops_the_paper() -> None:
    topics = {"t": TopicSettings(keywords=["agent"], exclude=["survey"])}
    assert score_paper(with_keywords("An agent", ("survey",)), topics, WEIGHTS) is None


def test_the_cached_ranking_counts_ai_keyword_hits_as_rank_does() -> None:
    topics = {"t": TopicSettings(keywords=["agent"])}
    day = dt.date(2026, 1, 1)
    papers = [
        Paper(i, f"Paper {i}", "", 3, None, None, i, None, day, day, ai_keywords=("agent",) if i % 2 else None)
        for i in range(1, 9)
    ]
    cached, count = top(papers, topics, WEIGHTS, HitCache(), 0.0, 3)
    plain, plain_count = top(papers, topics, WEIGHTS, None, 0.0, 3)
    assert [s.paper.id for s in cached] == [s.paper.id for s in plain] == [7, 5, 3]
    assert count == plain_count == 4
