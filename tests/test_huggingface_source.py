"""The huggingface source (issue 12) against a loopback server answering `/api/daily_papers?date=`
from the real sample of May 2023 (tests/hf_server.py): days by date, paging, the archive, catching
up missed days, politeness (one request a second, 429/Retry-After, conditional GET), health of empty
days, `backfill --source` over the month, and `run --once` on today's listing."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from paperdigest import clock, config
from paperdigest.config import Settings
from paperdigest.ingest.job import poll_source, record_poll
from paperdigest.service import health
from paperdigest.sources import make_source
from paperdigest.sources.huggingface import MIN_INTERVAL, HuggingFaceSource, days_to_fetch
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from tests.conftest import run_subprocess
from tests.hf_server import Canned, DailyPapersServer, featured_on, sample_items, serving

D = dt.date
MAY = [D(2023, 5, n) for n in range(1, 32)]
ITEMS = sample_items()
BY_DAY = {day: [i for i in ITEMS if featured_on(i) == day] for day in MAY}


def at(day: dt.date, hour: int = 15, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


class FakeClock:
    """The clock seam's monotonic time and sleep: sleeping moves the time on, at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Recorded(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "monotonic", fake.monotonic)
    monkeypatch.setattr(clock, "sleep", fake.sleep)
    return fake


@pytest.fixture
def server() -> Iterator[DailyPapersServer]:
    with serving() as srv:
        yield srv


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_engine(f"sqlite:///{tmp_path / 'hf.db'}")
    yield store
    store.dispose()


def settings_for(url: str, **extra: Any) -> Settings:
    return config.validate({"sources": [{"name": "hf", "kind": "huggingface", "url": url, **extra}]}, "test")


@pytest.fixture
def source(server: DailyPapersServer, tmp_path: Path, fake_clock: FakeClock) -> Iterator[HuggingFaceSource]:
    made = make_source(settings_for(server.url).sources[0], settings_for(server.url).limits)
    assert isinstance(made, HuggingFaceSource)
    made.http.archive = tmp_path / "archive"
    made.http.sleep = Recorded()  # retries never really wait
    yield made
    if made.http.client is not None:
        made.http.client.close()


def state(engine: Engine) -> Any:
    with engine.connect() as conn:
        return queries.source_state(conn, "hf")


def poll(engine: Engine, source: HuggingFaceSource, now: dt.datetime) -> Any:
    result = poll_source(engine, source, now)
    record_poll(engine, "hf", now, result)
    return result


# --- which days ----------------------------------------------------------------------------------


def test_days_to_fetch_are_today_and_the_days_since_the_last_complete_one() -> None:
    today = D(2023, 5, 16)
    assert days_to_fetch(None, today) == [today]  # the first poll: today
    assert days_to_fetch(D(2023, 5, 15), today) == [today]
    assert days_to_fetch(D(2023, 5, 12), today) == [D(2023, 5, 13), D(2023, 5, 14), D(2023, 5, 15), today]
    assert days_to_fetch(D(2023, 5, 20), today) == [today]  # a clock that went back
    assert len(days_to_fetch(D(2022, 1, 1), today)) == 31  # older days are for `backfill --source`


def test_the_url_defaults_to_the_public_site_and_a_site_root_will_do() -> None:
    default = config.validate({"sources": [{"name": "hf", "kind": "huggingface"}]}, "t").sources[0]
    assert default.api_url == "https://huggingface.co/api/daily_papers"
    assert settings_for("http://127.0.0.1:8000").sources[0].api_url == "http://127.0.0.1:8000/api/daily_papers"
    assert settings_for("http://127.0.0.1:8000/").sources[0].api_url == "http://127.0.0.1:8000/api/daily_papers"


def test_the_keys_of_a_huggingface_source_are_checked() -> None:
    for extra, message in (
        ({"empty_after": "2pm"}, "sources[0].empty_after: expected a time of day as HH:MM (UTC)"),
        ({"holidays": ["25.12."]}, "sources[0].holidays: expected days as MM-DD"),
        ({"holidays": ["02-30"]}, "sources[0].holidays"),
        ({"page_size": 500}, "sources[0].page_size"),
        ({"url": "file:///etc/passwd"}, "must start with http:// or https://"),
    ):
        with pytest.raises(config.ConfigError) as raised:
            config.validate({"sources": [{"name": "hf", "kind": "huggingface", **extra}]}, "test")
        assert message in str(raised.value)
    with pytest.raises(config.ConfigError, match="'empty_after' is only for huggingface sources"):
        config.validate({"sources": [{"name": "u", "kind": "url", "url": "http://x", "empty_after": "14:00"}]}, "t")


# --- a poll --------------------------------------------------------------------------------------


def test_a_poll_ingests_today_as_a_dump_captured_that_day(
    engine: Engine, source: HuggingFaceSource, server: DailyPapersServer, tmp_path: Path
) -> None:
    today = D(2023, 5, 16)
    result = poll(engine, source, at(today))
    assert [r.as_of for r in result.ingested] == [today]
    assert result.ingested[0].entries == result.new == len(BY_DAY[today]) == 21
    assert server.asked() == [("2023-05-16", 0)]  # 21 papers: one page of 50
    with engine.connect() as conn:
        (dump,) = queries.last_dumps(conn, 5)
        papers = queries.all_papers(conn)
    assert dump.as_of == today and dump.source.endswith(".json")
    assert {p.arxiv_id for p in papers} == {i["paper"]["id"] for i in BY_DAY[today]}
    assert all(p.first_seen == today and p.author_names for p in papers)
    archived = sorted((tmp_path / "archive").iterdir())
    assert [p.name[:22] for p in archived] == ["2023-05-16_fetched-202"]  # dated by the day: backfill replays it
    assert json.loads(archived[0].read_bytes()) == BY_DAY[today]  # byte for byte as served
    row = state(engine)
    assert row.complete_through == D(2023, 5, 15) and row.last_entries == 21


def test_the_archive_replays_each_day_as_captured_that_day(
    engine: Engine, source: HuggingFaceSource, tmp_path: Path, cli: Any
) -> None:
    poll(engine, source, at(D(2023, 5, 10), 9))
    poll(engine, source, at(D(2023, 5, 12), 9))  # the 10th again (now complete), the 11th, the 12th
    replay = cli("--db", f"sqlite:///{tmp_path / 'replay.db'}", "backfill", str(tmp_path / "archive"), "--json")
    assert replay.code == 0, replay.err
    assert [line["as_of"] for line in replay.json_lines()] == ["2023-05-10", "2023-05-11", "2023-05-12"]
    assert [line["entries"] for line in replay.json_lines()] == [len(BY_DAY[D(2023, 5, n)]) for n in (10, 11, 12)]


def test_a_day_is_paged_through_p_and_limit(
    engine: Engine, source: HuggingFaceSource, server: DailyPapersServer
) -> None:
    source.page_size = 5
    result = poll(engine, source, at(D(2023, 5, 16)))
    assert server.asked() == [("2023-05-16", p) for p in range(5)]  # 5 + 5 + 5 + 5 + 1
    assert {r.query["limit"] for r in server.requests} == {"5"}
    assert result.ingested[0].entries == 21  # one dump for the day, the pages joined in order
    with engine.connect() as conn:
        assert queries.counts(conn)["dumps"] == 1
    server.requests.clear()
    poll(engine, source, at(D(2023, 5, 19)))  # not the day after: May 17 and 18 are caught up first
    ten = D(2023, 5, 15)
    assert len(BY_DAY[ten]) == 10
    source.fetch_day(ten, at(D(2023, 5, 19)))
    assert server.asked()[-3:] == [("2023-05-15", 0), ("2023-05-15", 1), ("2023-05-15", 2)]  # [] past the end


def test_a_missed_day_is_caught_up(engine: Engine, source: HuggingFaceSource, server: DailyPapersServer) -> None:
    poll(engine, source, at(D(2023, 5, 8)))
    server.requests.clear()
    result = poll(engine, source, at(D(2023, 5, 11), 9))  # down on the 9th and the 10th
    assert [d for d, _ in server.asked()] == ["2023-05-08", "2023-05-09", "2023-05-10", "2023-05-11"]
    # The 8th, asked for again now that it is over: unchanged since (304), so nothing to store.
    assert (result.days[0].day, result.days[0].items) == (D(2023, 5, 8), None)
    assert [r.as_of for r in result.ingested] == [D(2023, 5, 9), D(2023, 5, 10), D(2023, 5, 11)]
    assert state(engine).complete_through == D(2023, 5, 10)
    with engine.connect() as conn:
        first_seen = {p.arxiv_id: p.first_seen for p in queries.all_papers(conn)}
    assert all(first_seen[i["paper"]["id"]] <= D(2023, 5, 9) for i in BY_DAY[D(2023, 5, 9)])


def test_at_most_one_request_a_second(
    engine: Engine, source: HuggingFaceSource, server: DailyPapersServer, fake_clock: FakeClock
) -> None:
    source.page_size = 5
    poll(engine, source, at(D(2023, 5, 1)))
    poll(engine, source, at(D(2023, 5, 19)))  # 18 days caught up, several pages each
    requests = len(server.requests)
    assert requests > 30
    assert fake_clock.sleeps and min(fake_clock.sleeps) > 0
    # Between the first request and the last, the clock moved on by at least a second a request:
    # 300 in 5 minutes at most, under the anonymous limit of 500.
    assert sum(fake_clock.sleeps) >= (requests - 1) * MIN_INTERVAL - 1e-6
    assert 300 / MIN_INTERVAL < 500


def test_429_with_retry_after_is_honoured(
    engine: Engine, source: HuggingFaceSource, server: DailyPapersServer
) -> None:
    server.canned.append(Canned(429, b"slow down", {"Retry-After": "7"}))
    result = poll(engine, source, at(D(2023, 5, 16)))
    assert source.http.sleep == [7.0]
    assert result.ingested[0].entries == 21
    assert server.asked() == [("2023-05-16", 0), ("2023-05-16", 0)]


def test_today_is_asked_for_conditionally_and_a_304_changes_nothing(
    engine: Engine, source: HuggingFaceSource, server: DailyPapersServer
) -> None:
    poll(engine, source, at(D(2023, 5, 16), 10))
    etag = state(engine).etag
    assert etag
    server.requests.clear()
    again = poll(engine, source, at(D(2023, 5, 16), 11))
    assert server.requests[0].headers.get("if-none-match") == etag
    assert again.ingested == [] and again.days[-1].items is None  # 304: nothing fetched, nothing stored
    row = state(engine)
    assert row.etag == etag and row.last_entries == 21 and row.last_error is None
    server.requests.clear()
    poll(engine, source, at(D(2023, 5, 17), 10))  # the next day: the 16th without validators, then the 17th
    assert [r.headers.get("if-none-match") for r in server.requests] == [etag, None]


# --- empty days and health -----------------------------------------------------------------------


def health_at(engine: Engine, settings: Settings, now: dt.datetime) -> health.SourceHealth:
    with engine.connect() as conn:
        return health.source_health(settings.sources[0], queries.source_state(conn, "hf"), now)


def test_an_empty_weekend_is_healthy(engine: Engine, source: HuggingFaceSource, server: DailyPapersServer) -> None:
    settings = settings_for(server.url)
    saturday = D(2023, 5, 13)
    assert not BY_DAY[saturday]
    result = poll(engine, source, at(saturday, 18))
    assert result.ingested == [] and [(d.day, d.items) for d in result.days] == [(saturday, 0)]
    assert not result.empty  # no warning logged for the source
    verdict = health_at(engine, settings, at(saturday, 18))
    assert verdict.state == "ok" and verdict.healthy and verdict.detail is None


def test_an_empty_weekday_past_its_hour_is_a_warning(
    engine: Engine, source: HuggingFaceSource, server: DailyPapersServer
) -> None:
    settings = settings_for(server.url, empty_after="14:00")
    monday = D(2023, 5, 1)  # the sample has no papers for May 1-3
    poll(engine, source, at(monday, 9))
    assert health_at(engine, settings, at(monday, 13, 59)).state == "ok"  # not yet: papers may come
    late = health_at(engine, settings, at(monday, 14, 0))
    assert late.state == "warning" and not late.healthy
    assert late.detail is not None and "Monday 2023-05-01" in late.detail and "empty_after (14:00 UTC)" in late.detail
    assert health_at(engine, settings, at(D(2023, 5, 2), 9)).state == "ok"  # a new day: its own listing
    holiday = settings_for(server.url, holidays=["05-01"])
    assert health_at(engine, holiday, at(monday, 20)).state == "ok"
    later = settings_for(server.url, empty_after="18:30")
    assert health_at(engine, later, at(monday, 16)).state == "ok"


def test_status_shows_the_empty_weekday(
    cli: Any, server: DailyPapersServer, tmp_path: Path, monkeypatch: Any, fake_clock: FakeClock
) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f'[[sources]]\nname = "hf"\nkind = "huggingface"\nurl = "{server.site}"\n', encoding="utf-8")
    db = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("PAPERDIGEST_NOW", "2023-05-02T16:00:00+00:00")
    assert cli("--config", str(conf), "--db", db, "run", "--once").code == 0
    report = cli("--config", str(conf), "--db", db, "status", "--json")
    assert report.code == 1
    (hf,) = json.loads(report.out)["sources"]
    assert hf["state"] == "warning" and "Tuesday 2023-05-02" in hf["detail"]
    text = cli("--config", str(conf), "--db", db, "status")
    line = next(line for line in text.out.splitlines() if line.startswith("source hf (huggingface): warning"))
    assert line.endswith("today (Tuesday 2023-05-02) has no papers yet at 16:00Z, past empty_after (14:00 UTC): "
                         "papers are featured every weekday")  # fmt: skip
    monkeypatch.setenv("PAPERDIGEST_NOW", "2023-05-06T16:00:00+00:00")  # a Saturday: catches up, then empty
    assert cli("--config", str(conf), "--db", db, "run", "--once").code == 0
    assert cli("--config", str(conf), "--db", db, "status").code == 0


# --- backfill --source ---------------------------------------------------------------------------


def backfill_config(tmp_path: Path, server: DailyPapersServer) -> Path:
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'[[sources]]\nname = "hf"\nkind = "huggingface"\nurl = "{server.url}"\n'
        '[[sources]]\nname = "inbox"\nkind = "directory"\npath = "/nonexistent"\n',
        encoding="utf-8",
    )
    return conf


def test_backfill_of_a_month_ingests_every_featured_paper_with_every_field(
    cli: Any, server: DailyPapersServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    monkeypatch.setenv("PAPERDIGEST_NOW", "2023-06-10T12:00:00+00:00")
    conf, db = backfill_config(tmp_path, server), f"sqlite:///{tmp_path / 'b.db'}"
    args = ("--config", str(conf), "--db", db, "backfill", "--source", "hf", "--from", "2023-05-01", "--to")
    result = cli(*args, "2023-05-31", "--json")
    assert result.code == 0, result.err
    lines = result.json_lines()
    with_papers = [day for day in MAY if BY_DAY[day]]
    assert [line["as_of"] for line in lines] == [day.isoformat() for day in with_papers]  # oldest first
    assert [line["entries"] for line in lines] == [len(BY_DAY[day]) for day in with_papers]
    assert sorted({d for d, _ in server.asked()}) == [day.isoformat() for day in MAY]  # every day asked for
    with sqlite3.connect(tmp_path / "b.db") as conn:
        rows = conn.execute(
            "SELECT arxiv_id, author_names, ai_summary, ai_keywords, github_repo, github_stars, comments,"
            " thumbnail, first_backfill FROM paper"
        ).fetchall()
    assert {row[0] for row in rows} == {i["paper"]["id"] for i in ITEMS}  # every featured paper, by arXiv id
    assert all(row[1] and row[2] and row[3] and row[6] is not None and row[7] for row in rows)
    assert sum(1 for row in rows if row[4]) == sum(1 for i in ITEMS if i["paper"].get("githubRepo"))
    assert {row[8] for row in rows} == {1}  # history: never "new" for a digest
    papers = cli("--config", str(conf), "--db", db, "papers", "--top", "1", "--json").json_lines()
    assert papers[0]["arxiv_id"] == "2305.14314" and papers[0]["author_names"][0] == "Tim Dettmers"
    # Weekends: empty, and nothing is wrong.
    saturdays = [day for day in MAY if day.weekday() == 5]
    assert all(not BY_DAY[day] for day in saturdays)
    table = cli(*args, "2023-05-31")  # resumed: every day with papers is ingested already
    assert table.code == 0
    assert f"{len(MAY) - len(with_papers)} without papers" in table.out and f"{len(with_papers)} skipped" in table.out
    status = cli("--config", str(conf), "--db", db, "status", "--json")
    assert json.loads(status.out)["rejected"] == []


def test_backfill_is_resumable_and_refresh_fetches_again(
    cli: Any, server: DailyPapersServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    monkeypatch.setenv("PAPERDIGEST_NOW", "2023-06-10T12:00:00+00:00")
    conf, db = backfill_config(tmp_path, server), f"sqlite:///{tmp_path / 'b.db'}"
    args = ("--config", str(conf), "--db", db, "backfill", "--source", "hf", "--json")
    server.canned.extend(Canned(500) for _ in range(4))  # the third day fails, retries and all
    server.canned.appendleft(Canned(200, json.dumps(BY_DAY[D(2023, 5, 8)]).encode()))
    server.canned.appendleft(Canned(200, json.dumps(BY_DAY[D(2023, 5, 5)]).encode()))
    broken = cli(*args, "--from", "2023-05-05", "--to", "2023-05-12")
    assert broken.code == 1 and "HTTP 500" in broken.err and "after 4 tries" in broken.err
    assert {2.0, 4.0} <= set(fake_clock.sleeps)  # the retries' backoff went through the clock seam
    assert [line["as_of"] for line in broken.json_lines()] == ["2023-05-05", "2023-05-06"]
    server.requests.clear()
    resumed = cli(*args, "--from", "2023-05-05", "--to", "2023-05-12")
    assert resumed.code == 0, resumed.err
    assert [line["as_of"] for line in resumed.json_lines()] == ["2023-05-07", "2023-05-08", "2023-05-09", "2023-05-10",
                                                                 "2023-05-11", "2023-05-12"]  # fmt: skip
    assert "2023-05-05" not in {d for d, _ in server.asked()}  # ingested before: not asked for again
    refreshed = cli(*args, "--from", "2023-05-05", "--to", "2023-05-05", "--refresh")
    assert refreshed.code == 0 and refreshed.json_lines()[0]["as_of"] == "2023-05-05"


def test_backfill_refuses_what_it_cannot_do(cli: Any, server: DailyPapersServer, tmp_path: Path) -> None:
    conf, db = str(backfill_config(tmp_path, server)), f"sqlite:///{tmp_path / 'b.db'}"
    cases = [
        (["--source", "nope", "--from", "2023-05-01", "--to", "2023-05-02"], "no source named 'nope'"),
        (["--source", "inbox", "--from", "2023-05-01", "--to", "2023-05-02"], "backfill its dumps by PATH"),
        (["--source", "hf", "--from", "2023-05-03", "--to", "2023-05-02"], "is after --to"),
        (["--source", "hf", "--from", "2023-05-01"], "all three are needed"),
        (["--source", "hf", "--from", "2023-05-01", "--to", "2999-01-01"], "after today"),
        (["seeds", "--source", "hf", "--from", "2023-05-01", "--to", "2023-05-02"], "not both"),
        ([], "name dumps (PATH...)"),
    ]
    for extra, message in cases:
        result = cli("--config", conf, "--db", db, "backfill", *extra)
        assert result.code == 2 and message in result.err, (extra, result.err)
        assert result.out == "", (extra, result.out)  # the error alone: no empty summary before it
    assert server.requests == []


# --- the daemon ----------------------------------------------------------------------------------


def test_run_once_ingests_todays_listing(server: DailyPapersServer, tmp_path: Path) -> None:
    """`run --once`, a real process with the clock pinned: today's papers in the store and in the digest."""
    outbox = tmp_path / "outbox"
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'[[sources]]\nname = "hf"\nkind = "huggingface"\nurl = "{server.site}"\n'
        '[topics.llm]\nkeywords = ["language model", "LLM"]\n'
        f'[mail]\ntransport = "file"\noutbox_dir = "{outbox}"\n'
        '[[subscribers]]\nemail = "lin@example.org"\ntopics = ["llm"]\ncron = "0 16 * * *"\n',
        encoding="utf-8",
    )
    env = {"STATE_DIRECTORY": str(tmp_path / "state"), "PAPERDIGEST_NOW": "2023-05-16T16:30:00+00:00"}
    result = run_subprocess("--config", str(conf), "--db", f"sqlite:///{tmp_path / 'r.db'}", "run", "--once", env=env)
    assert result.code == 0, result.out + result.err
    assert "source hf: 1 new dump (21 entries, 21 new papers)" in result.out
    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("SELECT as_of, backfill FROM dump").fetchall() == [("2023-05-16", 0)]
        assert conn.execute("SELECT complete_through, last_entries FROM source_state").fetchone() == ("2023-05-15", 21)
    archived = list((tmp_path / "state" / "archive" / "hf").iterdir())
    assert len(archived) == 1 and archived[0].name.startswith("2023-05-16_")
    (html,) = outbox.glob("*.html")
    page = html.read_text(encoding="utf-8")
    assert "https://arxiv.org/pdf/" in page and "AI summary" in page
