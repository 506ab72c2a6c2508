"""The read commands at scale (issue 13): `papers --top` reads through the upvotes index in two
statements, `papers --topic` streams the store and stops once no unread paper can make the list.
Both must give exactly what they gave before: the old statement and the old ranking are kept
here as oracles and compared on both engines, with ties and unknown upvotes."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, insert, select

from paperdigest.config import ScoringSettings, Settings, TopicSettings
from paperdigest.model import Paper
from paperdigest.score import TopRanking, rank, ranked_papers
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from paperdigest.store.queries._sql import code_point_order
from paperdigest.store.queries.papers import _PAPER_COLUMNS, _paper
from paperdigest.store.tables import dump_table, paper_table

STAMP = dt.datetime(2026, 11, 2, 7, 0, tzinfo=dt.UTC)
DAYS = (dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3))
# Titles that tie, differ only by case (code point order puts "Beta" before "alpha"), and carry keywords.
TITLES = ("alpha agents", "Beta agent", "alpha agents", "GUI agent for the web", "gamma", "Web Agents", "delta")
ABSTRACTS = (None, "", "a web agent with tool use", "computer use by agents", "robots and reagents", "plain")
KEYWORDS = (None, (), ("agent",), ("GUI agent", "planning"), ("tool use",))
TOPICS = {
    "agents": TopicSettings(keywords=["agent", "web agent", "GUI", "computer use", "tool use"]),
    "one": TopicSettings(keywords=["agent"], exclude=["robot"]),
    "folds": TopicSettings(keywords=["policies", "box", "Café"], exclude=["ﬁxes"]),
}


def _settings() -> Settings:
    return Settings().model_copy(update={"topics": TOPICS})


def _fill(engine: Engine, count: int, seed: int, upvotes: list[int | None] | None = None) -> None:
    rng = random.Random(seed)
    choices = upvotes or [None, None, 0, 1, 1, 2, 5, 5, 40]
    with engine.begin() as conn:
        dump_id = conn.execute(
            insert(dump_table).returning(dump_table.c.id),
            {"content_hash": f"h{seed}", "source": "t", "as_of": DAYS[0], "layout": "full", "ingested_at": STAMP},
        ).scalar_one()
        rows = []
        for index in range(count):
            title = rng.choice(TITLES)
            first = rng.choice(DAYS)
            rows.append({
                "arxiv_id": f"2610.{index:05d}", "title_key": f"{title.lower()} {index}", "title": title,
                "abstract": rng.choice(ABSTRACTS), "upvotes": rng.choice(choices), "ai_keywords": rng.choice(KEYWORDS),
                "first_seen": first, "last_seen": first, "first_dump_id": dump_id, "first_ingested_at": STAMP,
            })
        rng.shuffle(rows)  # ids in no relation to the order asked for
        conn.execute(insert(paper_table), rows)


def _old_top(conn: Connection, limit: int | None, since: dt.date | None) -> list[Paper]:
    """`top_papers` before issue 13: one statement, NULLs sorted last by an expression."""
    stmt = select(*_PAPER_COLUMNS)
    if since is not None:
        stmt = stmt.where(paper_table.c.first_seen >= since)
    stmt = stmt.order_by(
        paper_table.c.upvotes.is_(None),
        paper_table.c.upvotes.desc(),
        paper_table.c.first_seen.desc(),
        code_point_order(conn, paper_table.c.title),
        paper_table.c.id,
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_paper(row) for row in conn.execute(stmt)]


def test_top_papers_gives_the_rows_of_the_old_statement_in_its_order(db_url: str) -> None:
    engine = open_engine(db_url)
    _fill(engine, 80, seed=3)
    with engine.connect() as conn:
        nulls = sum(p.upvotes is None for p in _old_top(conn, None, None))
        assert 0 < nulls < 80  # both statements are needed for the longer lists
        for since in (None, DAYS[1], DAYS[2]):
            for limit in (*range(1, 82), None):
                assert queries.top_papers(conn, limit, since) == _old_top(conn, limit, since), (limit, since)
    engine.dispose()


def _old_ranked(engine: Engine, settings: Settings, topic: str, since: dt.date | None, limit: int) -> list[Any]:
    """`papers --topic` before issue 13: every paper loaded, scored and sorted (ties: id order)."""
    with engine.connect() as conn:
        pool = sorted(queries.papers_first_seen_since(conn, since) if since else queries.all_papers(conn),
                      key=lambda p: p.id)
    return rank(pool, {topic: settings.topics[topic]}, settings.scoring)[:limit]


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_papers_by_topic_are_the_old_ranking(db_url: str, topic: str) -> None:
    engine = open_engine(db_url)
    _fill(engine, 120, seed=5)
    settings = _settings()
    for since in (None, DAYS[2]):
        for limit in (1, 2, 3, 7, 20, 119, 500):
            assert ranked_papers(engine, settings, topic, since, limit) == _old_ranked(
                engine, settings, topic, since, limit
            ), (limit, since)
    engine.dispose()


def test_papers_by_topic_stop_reading_once_nothing_can_enter(db_url: str) -> None:
    """Upvotes far apart: the best few are certain after a few rows, and the rest are not read."""
    engine = open_engine(db_url)
    _fill(engine, 200, seed=7, upvotes=[None, 1, 3, 10, 100, 1_000, 10_000, 100_000, 1_000_000])
    settings = _settings()
    ranking = TopRanking("one", TOPICS["one"], settings.scoring, 3)
    with engine.connect() as conn:
        for known in (True, False):
            ranking.read(queries.papers_to_rank(conn, known))
            if ranking.complete():
                break
        chosen = ranking.scored(queries.papers_by_ids(conn, ranking.ids()))
    assert ranking.stopped and ranking.read_rows < 100
    assert chosen == _old_ranked(engine, settings, "one", None, 3)
    engine.dispose()


_TEXT = st.sampled_from(["agent", "agents", "web agent", "GUI", "robot", "tool use", "reagent", "x", "", "policy",
                         "Policies", "boxes", "CAFÉ", "cafe", "fixes", "ﬁx", "ﬁxes"])


@given(
    papers=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 3), st.integers(0, 10**6)),
            st.lists(_TEXT, max_size=3).map(" ".join),
            st.lists(_TEXT, max_size=4).map(" ".join),
            st.one_of(st.none(), st.lists(_TEXT, max_size=3).map(tuple)),
        ),
        max_size=40,
    ),
    limit=st.integers(1, 12),
    weights=st.tuples(st.floats(0, 3), st.floats(0, 5), st.floats(0, 2), st.one_of(st.none(), st.floats(0, 2))),
    topic=st.sampled_from(sorted(TOPICS)),
)
def test_the_streamed_ranking_is_rank_whatever_the_weights(
    papers: list[tuple[int | None, str, str, tuple[str, ...] | None]],
    limit: int,
    weights: tuple[float, float, float, float | None],
    topic: str,
) -> None:
    """Pure: TopRanking over rows in the store's order (known upvotes, most first, then unknown)
    against rank() over the same papers; the bound never drops a paper that belongs."""
    scoring = ScoringSettings(upvotes=weights[0], title=weights[1], abstract=weights[2], ai_keywords=weights[3])
    made = [
        Paper(id=index + 1, title=title or "t", abstract=abstract, authors=None, org=None, published=None,
              upvotes=upvotes, arxiv_id=None, ai_keywords=ai, first_seen=DAYS[0], last_seen=DAYS[0])
        for index, (upvotes, title, abstract, ai) in enumerate(papers)
    ]
    ranking = TopRanking(topic, TOPICS[topic], scoring, limit)
    known = sorted((p for p in made if p.upvotes is not None), key=lambda p: -(p.upvotes or 0))
    for part in (known, [p for p in made if p.upvotes is None]):
        ranking.read((p.id, p.upvotes, p.title, p.abstract, p.ai_keywords) for p in part)
        if ranking.complete():
            break
    assert ranking.scored({p.id: p for p in made}) == rank(made, {topic: TOPICS[topic]}, scoring)[:limit]
