"""The web side's recent papers (a topic's feed) go through the dumps and the first-dump index:
first_ingested_at has no index of its own since revision 0008. Same rows as a filter on it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select

from paperdigest.ingest import apply
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from paperdigest.store.tables import paper_table
from tests.test_ingest import entry, listing

UTC = dt.UTC


def test_recent_papers_are_those_first_ingested_since_the_time_not_backfilled(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine(db_url)
    plan = [  # (ingested at, backfill, titles)
        (dt.datetime(2026, 1, 1, 8, tzinfo=UTC), False, ["Old One", "Old Two"]),
        (dt.datetime(2026, 1, 3, 8, tzinfo=UTC), True, ["History", "Old One"]),
        (dt.datetime(2026, 1, 5, 8, tzinfo=UTC), False, ["Fresh One", "Old Two", "Fresh Two"]),
        (dt.datetime(2026, 1, 6, 8, tzinfo=UTC), False, ["Fresh Three", "History"]),
    ]
    for day, (at, backfill, titles) in enumerate(plan, 1):
        monkeypatch.setenv("PAPERDIGEST_NOW", at.isoformat())
        entries = [entry(title, position) for position, title in enumerate(titles, 1)]
        apply(engine, listing(*entries, as_of=dt.date(2026, 1, day), tag=str(day)), backfill=backfill)
    p = paper_table.c
    with engine.connect() as conn:
        for since in (at - dt.timedelta(seconds=1) for at, _, _ in plan):
            found = sorted(paper.title for paper in queries.recent_papers(conn, since))
            wanted = sorted(conn.execute(
                select(p.title).where(p.first_ingested_at >= since, p.first_backfill.is_(False))).scalars())
            assert found == wanted, since
        since = dt.datetime(2026, 1, 4, tzinfo=UTC)
        assert sorted(paper.title for paper in queries.recent_papers(conn, since)) == [
            "Fresh One", "Fresh Three", "Fresh Two"]
    engine.dispose()


@pytest.mark.sqlite_only  # SQLite's query plan; PostgreSQL's planner picks by its statistics
def test_recent_papers_read_the_first_dump_index(db_url: str) -> None:
    engine = open_engine(db_url)
    statements: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object, *rest: object) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    with engine.connect() as conn:
        queries.recent_papers(conn, dt.datetime(2026, 1, 1, tzinfo=UTC))
        event.remove(engine, "before_cursor_execute", capture)
        statement, parameters = statements[-1]
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
    engine.dispose()
    assert "ix_paper_first_dump_id" in plan, plan
    assert "SCAN paper" not in plan, plan
