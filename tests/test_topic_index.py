"""The topic index (paper_topic, issue 13): `papers --topic` read from it gives exactly what the
scan gives (score.scanned_ranking, the implementation before the index, kept as the oracle):
after ingests of new papers, of upvotes that moved and of texts that changed; after the config's
topics or weights changed (the scan until the rebuild, the index after it); on both engines.
And the index's entries are what a rebuild from scratch makes of the same papers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete, insert
from sqlalchemy.pool import NullPool

from paperdigest import topic_index
from paperdigest.config import ScoringSettings, Settings, TopicSettings, embedded_default, load
from paperdigest.errors import StoreError
from paperdigest.folding import WORD
from paperdigest.ingest import ahead, apply, job
from paperdigest.ingest.identity import title_key
from paperdigest.model import Listing
from paperdigest.score import folded, ranked_papers, scanned_ranking
from paperdigest.store import migrate
from paperdigest.store.engine import open_engine
from paperdigest.store.tables import dump_table, paper_table, topic_index_table
from paperdigest.topic_index import _folded_text
from tests.conftest import SEEDS
from tests.listing_gen import entry
from tests.storehelp import rows
from tests.test_backfill_parallel import make_dumps

TOPICS = {
    "agents": TopicSettings(keywords=["agent", "web agent", "GUI", "computer use", "tool use"]),
    "one": TopicSettings(keywords=["agent"], exclude=["robot"]),
    "folds": TopicSettings(keywords=["policies", "box", "Café"], exclude=["ﬁxes"]),
    "reasoning": TopicSettings(keywords=["reasoning", "chain-of-thought", "math"]),
}
WORDS = ("agents", "Agent", "web agent", "GUI", "tool use", "computer use", "robot", "reagent", "policy", "Policies",
         "boxes", "CAFÉ", "cafe", "ﬁxes", "reasoning", "math", "chain-of-thought", "plain", "model", "the")
DAY = dt.date(2026, 10, 1)
LIMITS = (1, 2, 3, 7, 20, 500)


_FOLDING = st.text(alphabet=st.sampled_from("aeiosyxzchéß ﬁ_1-İΣσς"), max_size=40) | st.lists(
    st.sampled_from(["policies", "ies", "ties", "boxes", "xes", "ches", "sses", "classes", "as", "is", "bus", "gas",
                     "series", "dishes", "quizzes", "Agents", "GUIs", "ss", "s", "yes", "İSTANBUL", "ﬁxes", "Ǆs"]),
    max_size=8).map(" ".join)


@given(text=_FOLDING | st.text(alphabet=st.characters(max_codepoint=127), max_size=60))  # ASCII: split by a table
def test_the_index_folds_a_text_as_score_does(text: str) -> None:
    assert _folded_text(text) == folded(text)


def test_an_ascii_text_splits_into_the_words_the_word_pattern_finds() -> None:
    for text in ["".join(map(chr, range(128))), *(f"a{chr(i)}b" for i in range(128))]:  # each character
        assert text.translate(topic_index._ASCII_WORDS).split() == WORD.findall(text.casefold()), repr(text)


def _settings(topics: dict[str, TopicSettings] = TOPICS, **weights: Any) -> Settings:
    return Settings().model_copy(update={"topics": topics, "scoring": ScoringSettings(**weights)})


def _text(rng: random.Random, most: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, most)))


def _listing(number: int, papers: list[dict[str, Any]]) -> Listing:
    entries = tuple(entry(i + 1, **p) for i, p in enumerate(papers))
    digest = hashlib.sha256(repr((number, entries)).encode()).hexdigest()
    return Listing(f"synthetic-{number}", DAY + dt.timedelta(days=number), "full", digest, entries)


def _paper(rng: random.Random, index: int) -> dict[str, Any]:
    return {
        "title": f"{_text(rng, 4)} {index}",
        "abstract": rng.choice([None, "", _text(rng, 12)]),
        "upvotes": rng.choice([None, 0, 1, 1, 2, 3, 5, 8, 40]),
        "arxiv_id": f"2610.{index:05d}",
        "ai_keywords": rng.choice([None, (), (_text(rng, 2),), (_text(rng, 2), _text(rng, 2))]),
    }


def _dumps(seed: int, count: int, size: int) -> list[Listing]:
    """Dumps of new papers and of papers listed before: upvotes moved, now and then a new title,
    abstract or AI keywords (the title keeps its number: the paper stays known by its arXiv id)."""
    rng = random.Random(seed)
    known: list[dict[str, Any]] = []
    listings = []
    for number in range(count):
        papers = []
        for index in range(len(known), len(known) + size // 2):
            paper = _paper(rng, index)
            known.append(paper)
            papers.append(paper)
        for paper in rng.sample(known, min(size - len(papers), len(known))):
            if paper in papers:
                continue
            paper["upvotes"] = (paper["upvotes"] or 0) + rng.choice([0, 1, 3, 20])
            if rng.random() < 0.2:
                field = rng.choice(["title", "abstract", "ai_keywords"])
                paper[field] = _paper(rng, int(paper["arxiv_id"][5:]))[field]
            if rng.random() < 0.1:
                paper["title"] = f"{_text(rng, 4)} {paper['arxiv_id'][5:]}"
            papers.append(dict(paper))
        listings.append(_listing(number, papers))
    return listings


def _same_as_the_scan(engine: Engine, settings: Settings) -> None:
    """Every topic, limit and `since`: the index's answer is there, and is the scan's."""
    with engine.connect() as conn:
        for topic in settings.topics:
            for since in (None, DAY + dt.timedelta(days=2)):
                for limit in LIMITS:
                    indexed = topic_index.ranked(conn, settings, topic, since, limit)
                    assert indexed is not None, (topic, since, limit)
                    assert indexed == scanned_ranking(conn, settings, topic, since, limit), (topic, since, limit)
                    assert [s.to_json() for s in indexed] == [
                        s.to_json() for s in scanned_ranking(conn, settings, topic, since, limit)
                    ]


def _entries(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return topic_index.entries(conn)


def _rebuilt_entries(engine: Engine, settings: Settings) -> list[tuple[Any, ...]]:
    """The entries a build from scratch makes of the papers as they are now."""
    with engine.begin() as conn:
        conn.execute(delete(topic_index_table))
    assert topic_index.ensure(engine, settings)
    return _entries(engine)


def test_the_index_gives_the_scan_after_ingests_of_new_papers_upvotes_and_texts(db_url: str) -> None:
    engine = open_engine(db_url)
    settings = _settings()
    assert topic_index.ensure(engine, settings)  # an empty store: built empty
    assert not topic_index.ensure(engine, settings)  # the same config: nothing to do
    listings = _dumps(seed=11, count=8, size=60)
    for number, listing in enumerate(listings):
        apply(engine, listing, backfill=number % 2 == 0)
        if number in (0, 3, 7):
            _same_as_the_scan(engine, settings)
    built = _entries(engine)
    assert len({e[0] for e in built}) > 50 and {e[1] for e in built} == set(TOPICS)
    assert built == _rebuilt_entries(engine, settings)
    engine.dispose()


def test_an_ingest_that_changes_a_title_or_upvotes_moves_the_papers_entries(db_url: str) -> None:
    engine = open_engine(db_url)
    settings = _settings()
    topic_index.ensure(engine, settings)
    first = {"title": "A web agent", "abstract": "plain", "upvotes": 1, "arxiv_id": "2610.00001"}
    other = {"title": "Plain model", "abstract": "the robot", "upvotes": 9, "arxiv_id": "2610.00002"}
    apply(engine, _listing(0, [first, other]))
    with engine.connect() as conn:
        assert {e[:2] for e in topic_index.entries(conn)} == {(1, "agents"), (1, "one")}
    # The same papers, a day later: the first renamed (no keyword), the second now an agent (and a robot).
    apply(engine, _listing(1, [{**first, "title": "A plain paper", "upvotes": 5},
                                {**other, "title": "An agent model", "upvotes": 30}]))
    with engine.connect() as conn:
        assert {e[:2] for e in topic_index.entries(conn)} == {(2, "agents")}  # "one" excludes robots
        (entry_,) = topic_index.entries(conn)
        assert entry_[4] == -30 and entry_[5] == "An agent model"
    apply(engine, _listing(2, [{**other, "title": "An agent model", "upvotes": 31}]))  # upvotes alone
    with engine.connect() as conn:
        (moved,) = topic_index.entries(conn)
        assert moved[4] == -31 and moved[2] == entry_[2] and moved[3] < entry_[3]
    _same_as_the_scan(engine, settings)
    engine.dispose()


def test_a_changed_config_is_served_by_the_scan_until_the_rebuild(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine(db_url)
    settings = _settings()
    topic_index.ensure(engine, settings)
    for listing in _dumps(seed=5, count=4, size=40):
        apply(engine, listing)
    before = _entries(engine)
    for changed in (
        _settings(upvotes=2.0, title=1.0),
        _settings(ai_keywords=4.0),
        _settings({**TOPICS, "agents": TopicSettings(keywords=["agent", "GUI"], exclude=["math"])}),
        _settings({"math": TopicSettings(keywords=["math"])}),
    ):
        with engine.connect() as conn:
            for topic in changed.topics:
                assert topic_index.ranked(conn, changed, topic, None, 20) is None  # never stale
        for topic in changed.topics:  # what `papers --topic` shows meanwhile: the scan
            with engine.connect() as conn:
                scanned = scanned_ranking(conn, changed, topic, None, 20)
            assert ranked_papers(engine, changed, topic, None, 20) == scanned
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="paperdigest"):
            assert topic_index.ensure(engine, changed)
        assert any("topic index rebuilt (the config's topics or scoring weights changed)" in r.getMessage()
                   for r in caplog.records)
        _same_as_the_scan(engine, changed)
        # An ingest under the rebuilt index keeps it current for what it was built for.
        apply(engine, _dumps(seed=99, count=1, size=30)[0])
        _same_as_the_scan(engine, changed)
    assert topic_index.ensure(engine, settings)
    assert _entries(engine) != before  # the papers the later dumps brought are in too
    _same_as_the_scan(engine, settings)
    engine.dispose()


def test_the_commands_build_it_and_papers_topic_reads_it(cli: Any, db_url: str, tmp_path: Path) -> None:
    """`ingest` builds the store's first index for its config (embedded default: its topics);
    `papers --topic` then gives what the scan gives. A one-shot ingest with another config keeps
    the index (and keeps it current), saying so; `papers --topic` with that config scans."""
    assert cli("--db", db_url, "ingest", str(SEEDS)).code == 0
    assert rows(db_url, "SELECT count(*) FROM topic_index") == [(1,)]
    assert rows(db_url, "SELECT count(*) FROM paper_topic")[0][0] > 0
    shown = cli("--db", db_url, "papers", "--topic", "agents", "--top", "30", "--json").json_lines()
    engine = open_engine(db_url)
    settings = embedded_default()
    with engine.connect() as conn:
        scanned = scanned_ranking(conn, settings, "agents", None, 30)
        assert topic_index.ranked(conn, settings, "agents", None, 30) == scanned
    assert shown == [s.to_json() for s in scanned] and len(shown) > 5
    engine.dispose()
    config = tmp_path / "other.toml"
    config.write_text('[topics.agents]\nkeywords = ["agent"]\n[scoring]\nupvotes = 0.5\n', encoding="utf-8")
    fingerprint = rows(db_url, "SELECT fingerprint FROM topic_index")
    result = cli("--config", str(config), "--db", db_url, "-v", "ingest", str(SEEDS / "004_d0e4e6143df38525.txt"),
                 "--as-of", "2026-11-30")
    assert result.code == 0, result.err
    assert "topic index rebuilt" not in result.err and "the topic index is kept" in result.err
    assert rows(db_url, "SELECT fingerprint FROM topic_index") == fingerprint
    other = cli("--config", str(config), "--db", db_url, "papers", "--topic", "agents", "--top", "10", "--json")
    engine = open_engine(db_url)
    other_settings = load(config)
    with engine.connect() as conn:
        assert topic_index.ranked(conn, other_settings, "agents", None, 10) is None  # not its index: the scan
        scanned = scanned_ranking(conn, other_settings, "agents", None, 10)
        kept = topic_index.ranked(conn, settings, "agents", None, 30)
        assert kept == scanned_ranking(conn, settings, "agents", None, 30)  # still the default's, current
    assert other.json_lines() == [s.to_json() for s in scanned]
    engine.dispose()


def test_a_0008_store_upgrades_to_the_index(new_store: Callable[..., str], cli: Any) -> None:
    """A store at revision 0008 holding papers: `db upgrade` adds the (empty) index; `papers
    --topic` scans until an ingest builds it, then reads it, the same either way."""
    url = new_store(empty=True)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), "0008")
        dump_id = conn.execute(insert(dump_table).returning(dump_table.c.id), {
            "content_hash": "h", "source": "t", "as_of": DAY, "layout": "full",
            "ingested_at": dt.datetime(2026, 10, 1, tzinfo=dt.UTC)}).scalar_one()
        rng = random.Random(3)
        conn.execute(insert(paper_table), [{
            **_paper(rng, i), "title_key": f"k{i}", "first_seen": DAY, "last_seen": DAY,
            "first_dump_id": dump_id, "first_ingested_at": dt.datetime(2026, 10, 1, tzinfo=dt.UTC)}
            for i in range(80)])
    engine.dispose()
    assert cli("--db", url, "db", "upgrade").code == 0
    assert rows(url, "SELECT count(*) FROM paper_topic") == [(0,)]
    settings = _settings()
    engine = open_engine(url)
    with engine.connect() as conn:
        assert topic_index.ranked(conn, settings, "agents", None, 10) is None
        scanned = scanned_ranking(conn, settings, "agents", None, 10)
    assert len(scanned) == 10
    assert topic_index.ensure(engine, settings)
    assert rows(url, "SELECT count(*) FROM paper_topic")[0][0] > 10
    _same_as_the_scan(engine, settings)
    engine.dispose()


def test_the_daemon_builds_it_before_its_polls(cli: Any, db_url: str) -> None:
    """`run --once` (embedded default: the seeds as a source) builds the index for its config
    before it polls, and the polls keep it: `papers --topic` reads it, and it is the scan."""
    result = cli("--db", db_url, "run", "--once")
    assert result.code == 0, result.err
    settings = embedded_default()
    engine = open_engine(db_url)
    with engine.connect() as conn:
        stored = topic_index.stored_spec(conn)
        assert stored is not None and stored.fingerprint == topic_index.settings_spec(settings).fingerprint
        for topic in settings.topics:
            indexed = topic_index.ranked(conn, settings, topic, None, 25)
            assert indexed is not None and indexed == scanned_ranking(conn, settings, topic, None, 25)
    assert rows(db_url, "SELECT count(*) FROM paper_topic")[0][0] > 0
    engine.dispose()


def test_a_store_that_refuses_the_rebuild_gives_one_error(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE paper_topic")
    with pytest.raises(StoreError, match=r"^cannot rebuild the topic index, nothing was changed: ") as raised:
        topic_index.ensure(engine, _settings())
    assert "\n" not in str(raised.value)
    assert rows(db_url, "SELECT count(*) FROM topic_index") == [(0,)]
    engine.dispose()


# --- points matched ahead, by backfill's parsing worker (Listing.topic_points) --------------------


def _matched_ahead(listing: Listing, spec: topic_index.Spec) -> Listing:
    """The listing as the parsing worker sends it: each entry matched against `spec`."""
    points = topic_index.EntryMatcher(spec).points(listing.entries, [title_key(e.title) for e in listing.entries])
    return dataclasses.replace(listing, topic_points=(spec.fingerprint, points))


def test_a_backfill_matched_in_the_parsing_worker_makes_the_index_of_one_matched_in_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_store: Callable[..., str]
) -> None:
    assert threading.active_count() == 1, "a thread leaked from another test: backfill would not fork"
    make_dumps(tmp_path / "dumps")
    settings = embedded_default()
    in_writer = [0]
    points = topic_index._points

    def counted(spec: topic_index.Spec, texts: tuple[str, str, str]) -> topic_index.Points:
        in_writer[0] += os.getpid() == parent  # the worker's calls count in its own copy
        return points(spec, texts)

    parent = os.getpid()
    monkeypatch.setattr(topic_index, "_points", counted)

    def run(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
        engine = open_engine(url)
        topic_index.ensure(engine, settings)
        in_writer[0] = 0
        outcomes = list(job.backfill(engine, [str(tmp_path / "dumps")]))
        assert len(outcomes) == len(list((tmp_path / "dumps").iterdir()))
        matched = in_writer[0]
        made = _entries(engine), _rebuilt_entries(engine, settings), matched
        engine.dispose()
        return made

    two_cores = run(new_store())
    assert two_cores[2] == 0  # every new paper's points came from the worker
    monkeypatch.setattr(ahead, "PARALLEL_MIN", 10**6)  # parsed in this process: matched by the writer
    one_core = run(new_store())
    assert one_core[2] > 0
    assert len(two_cores[0]) > 10 and two_cores[0] == two_cores[1]
    assert two_cores[0] == one_core[0] == one_core[1]


def test_the_writer_uses_points_matched_ahead_only_for_the_stored_spec_and_the_entrys_own_texts(
    db_url: str,
) -> None:
    engine = open_engine(db_url)
    settings = _settings()
    topic_index.ensure(engine, settings)
    spec = topic_index.settings_spec(settings)
    # Points for another spec (the index was rebuilt meanwhile): not used.
    first = _listing(0, [{"title": "A web agent", "abstract": "plain", "upvotes": 1, "arxiv_id": "2610.00001"}])
    apply(engine, dataclasses.replace(first, topic_points=("another spec", (((0, 99.0),),))))
    assert 99.0 not in {e[2] for e in _entries(engine)}
    # Points for this spec: used as they are (the worker matched the entry's texts).
    second = _listing(1, [{"title": "A plain model", "abstract": "plain", "upvotes": 1, "arxiv_id": "2610.00002"}])
    apply(engine, dataclasses.replace(second, topic_points=(spec.fingerprint, (((0, 99.0),),))))
    assert {e[:3] for e in _entries(engine) if e[0] == 2} == {(2, spec.topics[0].name, 99.0)}
    with engine.begin() as conn:  # back to what the papers say
        conn.execute(delete(topic_index_table))
    topic_index.ensure(engine, settings)
    # An older dump fills a gap (the abstract) but does not rename the paper: the paper's texts
    # are not the entry's, so the entry's points are not the paper's; matched by the writer.
    newer = {"title": "Plain model", "abstract": None, "upvotes": 3, "arxiv_id": "2610.00003"}
    apply(engine, _listing(9, [newer]))
    older = _matched_ahead(_listing(5, [{**newer, "title": "A web agent", "abstract": "about agents"}]), spec)
    assert older.topic_points is not None and older.topic_points[1][0]  # the entry's texts match
    apply(engine, older)
    mine = [e for e in _entries(engine) if e[0] == 3]
    assert mine and {e[5] for e in mine} == {"Plain model"}
    assert _entries(engine) == _rebuilt_entries(engine, settings)
    _same_as_the_scan(engine, settings)
    engine.dispose()


def test_points_matched_ahead_over_many_dumps_are_the_writers(db_url: str) -> None:
    """The worker's matcher reuses the points of an entry seen in a recent dump with the same
    texts; listings carrying them make the index a rebuild makes, texts changing meanwhile."""
    engine = open_engine(db_url)
    settings = _settings()
    topic_index.ensure(engine, settings)
    spec = topic_index.settings_spec(settings)
    matcher = topic_index.EntryMatcher(spec)
    matcher.KEPT = 3  # forget often: the pruned memo is exercised too
    for number, listing in enumerate(_dumps(seed=23, count=9, size=50)):
        keys = [title_key(e.title) for e in listing.entries]
        ahead_points = matcher.points(listing.entries, keys)
        assert ahead_points == tuple(
            topic_index._points(spec, topic_index._texts(e.title, e.abstract, e.ai_keywords)) for e in listing.entries
        )
        apply(engine, dataclasses.replace(listing, topic_points=(spec.fingerprint, ahead_points)),
              backfill=number % 2 == 1)
    assert len(matcher.seen) < 9 * 50
    assert _entries(engine) == _rebuilt_entries(engine, settings)
    _same_as_the_scan(engine, settings)
    engine.dispose()


def test_an_ingest_during_the_rebuilds_reading_goes_through_and_is_in_the_index(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild reads and matches the papers without the ingests' lock: an ingest that commits
    between two of its chunks is not kept waiting (with the lock held throughout, as before, it
    failed on SQLite with "database is locked" after the busy timeout, and waited for the whole
    rebuild on PostgreSQL), and what it changed in papers already read, and the papers it added,
    are in the rebuilt index as a build from scratch makes them."""
    engine = open_engine(db_url)
    settings = _settings()
    topic_index.ensure(engine, settings)
    for listing in _dumps(seed=7, count=3, size=40):
        apply(engine, listing)
    first = {"title": "A plain paper", "abstract": "plain", "upvotes": 1, "arxiv_id": "2610.90001"}
    apply(engine, _listing(50, [first]))  # the newest paper: read in the last chunk
    early = {"title": "Plain model 0", "abstract": "the", "upvotes": 2, "arxiv_id": "2610.00000"}  # read first
    changed = _settings({**TOPICS, "plain": TopicSettings(keywords=["plain", "web agent"])})
    monkeypatch.setattr(topic_index, "REBUILD_CHUNK", 7)
    read = topic_index.topic_queries.papers_to_match
    outcome: list[BaseException | None] = []

    def ingest() -> None:  # an ingest of another process, as far as the store can tell
        other = open_engine(db_url)
        try:
            apply(other, _listing(51, [
                {**early, "title": "A web agent 0", "upvotes": 70},  # already read: now matches more topics
                {"title": "A new web agent", "abstract": None, "upvotes": 3, "arxiv_id": "2610.90002"},
                {**first, "upvotes": 9},
            ]))
            outcome.append(None)
        except BaseException as exc:  # reported by the assertion below
            outcome.append(exc)
        finally:
            other.dispose()

    def reading(conn: Any, after: int, limit: int) -> Any:
        chunk = read(conn, after, limit)
        if after == -1:  # after the first chunk, before the second: the ingest runs and commits
            worker = threading.Thread(target=ingest)
            worker.start()
            worker.join(timeout=120)  # a guard against a hang, not a time measured
            assert not worker.is_alive(), "the ingest waited for the rebuild"
        return chunk

    monkeypatch.setattr(topic_index.topic_queries, "papers_to_match", reading)
    assert topic_index.ensure(engine, changed)
    assert outcome == [None]
    monkeypatch.setattr(topic_index.topic_queries, "papers_to_match", read)
    with engine.connect() as conn:
        got = topic_index.entries(conn)
    ids = {pid for pid, *_ in got}
    renamed = {(e[1], e[4]) for e in got if e[5] == "A web agent 0"}
    assert {("agents", -70), ("one", -70), ("plain", -70)} <= renamed and {u for _, u in renamed} == {-70}
    assert {e[1] for e in got if e[5] == "A new web agent"} == {"agents", "one", "plain"}
    assert {e[4] for e in got if e[5] == "A plain paper"} == {-9}
    assert len(ids) > 40
    _same_as_the_scan(engine, changed)
    assert got == _rebuilt_entries(engine, changed)
    engine.dispose()
