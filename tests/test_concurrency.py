"""An ingest held open while another ingest or a digest runs, on SQLite and on PostgreSQL: no
update is lost, and no paper falls between two digests (issue 11, point 4)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from paperdigest.config import validate
from paperdigest.digest import job as digest_job
from paperdigest.ingest import apply, write
from paperdigest.model import Entry, Listing
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from tests import pgserver
from tests.pgserver import no_postgresql


@pytest.fixture(scope="module")
def pg_server() -> Iterator[pgserver.PgServer | None]:
    try:
        with pgserver.server() as server:
            yield server
    except RuntimeError:
        yield None


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Any, pg_server: pgserver.PgServer | None) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'race.db'}"
    else:
        if pg_server is None:
            no_postgresql("no PostgreSQL server binaries")
        name = f"race_{uuid.uuid4().hex[:12]}"
        admin = create_engine(pg_server.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        url = pg_server.url(name)
    store = open_engine(url)
    yield store
    store.dispose()


def entry(position: int, title: str, upvotes: int, arxiv_id: str) -> Entry:
    return Entry(position, title, "An abstract about a robot.", 3, None, None, upvotes, arxiv_id)


def listing(tag: str, as_of: dt.date, *entries: Entry) -> Listing:
    return Listing(f"dump-{tag}", as_of, "api-json", f"hash-{tag}", tuple(entries))


class HeldIngest:
    """Runs `apply(listing)` in a thread and holds its transaction open at `where` ("before" the
    diff is written, or "after" it: papers written and stamped, not committed) until released."""

    def __init__(self, engine: Engine, held: Listing, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        real = write._write

        def holding_write(conn: Any, listing: Listing, *args: Any) -> Any:
            if listing is not held:
                return real(conn, listing, *args)
            if where == "before":
                self.reached.set()
                assert self.release.wait(30)
            result = real(conn, listing, *args)
            if where == "after":
                self.reached.set()
                assert self.release.wait(30)
            return result

        monkeypatch.setattr(write, "_write", holding_write)
        self.thread = threading.Thread(target=apply, args=(engine, held))
        self.thread.start()
        assert self.reached.wait(30), "the held ingest never reached its hold"

    def finish(self) -> None:
        self.release.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def test_an_older_dump_in_flight_never_overwrites_a_newer_one(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lost update: an older dump read the paper, a newer one commits meanwhile, then the older
    writes what it read. Serialised ingests make the newer one wait and diff against the older."""
    apply(engine, listing("base", dt.date(2026, 10, 31), entry(1, "Robot Paper", 1, "2611.00001")))
    older = listing("older", dt.date(2026, 11, 1), entry(1, "Robot Paper", 5, "2611.00001"))
    newer = listing("newer", dt.date(2026, 11, 2), entry(1, "Robot Paper", 9, "2611.00001"))
    held = HeldIngest(engine, older, "before", monkeypatch)
    racer = threading.Thread(target=apply, args=(engine, newer))
    racer.start()
    racer.join(1.0)  # with ingests serialised it waits for the held one; without, it is done by now
    held.finish()
    racer.join(30)
    with engine.connect() as conn:
        (paper, _), = queries.papers_by_identity(conn, ["2611.00001"], [])
    assert (paper.upvotes, paper.last_seen) == (9, dt.date(2026, 11, 2))


def test_papers_of_an_ingest_in_flight_go_out_in_the_next_digest(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost paper: a digest built while an ingest is open must not end its window past papers
    it cannot see yet; they belong to the next window, which must then hold them."""
    monkeypatch.delenv("PAPERDIGEST_NOW", raising=False)
    settings = validate(
        {
            "topics": {"robots": {"keywords": ["robot"]}},
            "subscribers": [{"email": "ada@example.org", "topics": ["robots"], "cron": "* * * * *"}],
        },
        "t",
    )
    papers = [entry(i, f"Robot Paper {i}", i, f"2611.{i:05d}") for i in range(1, 41)]
    held = HeldIngest(engine, listing("inflight", dt.date(2026, 11, 4), *papers), "after", monkeypatch)
    time.sleep(0.05)  # its papers carry an ingest time before the digest's `now`
    now = dt.datetime.now(dt.UTC)
    # Released a moment after the digest has read its window: on SQLite the digest's own write
    # then waits for the ingest's commit (one writer at a time), as it would for a real ingest.
    threading.Timer(1.0, held.release.set).start()
    first = digest_job.queue_due(engine, settings, now)
    held.finish()
    second = digest_job.queue_due(engine, settings, now + dt.timedelta(minutes=1))
    # PostgreSQL: the first digest's window ends before the open ingest, the second holds its
    # papers. SQLite: the first digest's reservation (a write, made before its window is read)
    # waits for the ingest's commit, so the first holds them. Either way once, none lost.
    assert sorted([*(p.papers for p in first), *(p.papers for p in second)]) == [0, 20]  # max_papers 20
    with engine.connect() as conn:
        _, end = queries.last_window(conn, "ada@example.org") or (None, None)
        assert end == queries.newest_dump(conn)
