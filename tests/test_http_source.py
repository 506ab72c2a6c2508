"""HttpSource against a real HTTP server on 127.0.0.1: fetch, retries, conditional GET, size cap,
archive, parse errors, and how each outcome shows in the source's health and in `status`."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from paperdigest import clock, config
from paperdigest.config import Settings, SourceSettings
from paperdigest.errors import SourceError
from paperdigest.ingest.job import poll_source
from paperdigest.parse import content_hash
from paperdigest.service import health
from paperdigest.service.scheduler import Service
from paperdigest.sources import http as http_source
from paperdigest.sources.http import HttpSource
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from tests.conftest import FIXTURES

API_FIXTURE = FIXTURES / "hf_daily_papers_2023-05.json"
PROPS_PAGE = FIXTURES / "daily_papers_props.html"
NOT_A_LISTING = FIXTURES / "not_a_listing.html"
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


# --- the server ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line is sent
    trickle: float = 0.0  # seconds between bytes: the body is sent a byte at a time
    trickle_headers: bool = False  # the status line and headers a byte at a time too
    stall_after: int | None = None  # body bytes sent before the server falls silent, connection open
    length: int | None = None  # the Content-Length announced, when not the body's


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # lower-cased names


class Server:
    """A loopback HTTP server whose replies each test programs; it records every request."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(404, b"not programmed")
        self.requests: list[Seen] = []
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                reply = server.replies.popleft() if server.replies else server.default
                if reply.delay and server.stop.wait(reply.delay):
                    return
                if reply.trickle or reply.stall_after is not None or reply.length is not None:
                    server.send_slowly(self, reply)
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.status != 304:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if reply.status != 304:
                        self.wfile.write(reply.body)
                except OSError:  # the client gave up (timeout, size cap): nothing to do
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def send_slowly(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        """Write the reply raw: trickled a byte at a time, or stalled part way, as programmed."""
        head = f"HTTP/1.0 {reply.status} Slow\r\n"
        for name, value in {**reply.headers, "Content-Length": str(reply.length or len(reply.body))}.items():
            head += f"{name}: {value}\r\n"
        body = reply.body if reply.stall_after is None else reply.body[: reply.stall_after]
        try:
            if self._write(handler, (head + "\r\n").encode("latin-1"), reply.trickle if reply.trickle_headers else 0):
                return
            if self._write(handler, body, reply.trickle) or reply.stall_after is None:
                return
            self.stop.wait()  # silent, the connection open, until the test ends
        except OSError:  # the client gave up (deadline, size cap): nothing to do
            pass

    def _write(self, handler: BaseHTTPRequestHandler, data: bytes, pause: float) -> bool:
        """Send `data`, `pause` seconds between bytes (0: at once); True when the test ended."""
        if not pause:
            handler.wfile.write(data)
            return False
        for byte in data:
            handler.wfile.write(bytes([byte]))
            if self.stop.wait(pause):
                return True
        return False

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "/api/daily_papers") -> str:
        return self.base + path

    def program(self, *replies: Reply, default: Reply | None = None) -> None:
        self.replies.extend(replies)
        if default is not None:
            self.default = default


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


@pytest.fixture
def engine(tmp_path: Path, db_url: str) -> Iterator[Engine]:
    eng = open_engine(db_url)
    yield eng
    eng.dispose()


class Sleeps(list[float]):
    """Stands in for time.sleep: records the waits, never waits."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sources() -> Iterator[list[HttpSource]]:
    """HttpSources made by a test; their clients are closed afterwards."""
    made: list[HttpSource] = []
    yield made
    for source in made:
        if source.client is not None:
            source.client.close()


def make(sources: list[HttpSource], url: str, archive: Path, **kwargs: Any) -> HttpSource:
    source = HttpSource("api", url, archive=archive, sleep=kwargs.pop("sleep", Sleeps()), **kwargs)
    sources.append(source)
    return source


def json_reply(body: bytes, **headers: str) -> Reply:
    return Reply(200, body, {"Content-Type": JSON_TYPE, **headers})


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return queries.counts(conn)


def state_of(engine: Engine, name: str) -> Any:
    with engine.connect() as conn:
        return queries.source_state(conn, name)


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def url_settings(url: str, **extra: str) -> Settings:
    return config.validate({"sources": [{"name": "api", "kind": "url", "url": url, **extra}]}, "t")


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "paperdigest.toml"
    path.write_text(f'[[sources]]\nname = "api"\nkind = "url"\nurl = "{url}"\n', encoding="utf-8")
    return path


def service_for(settings: Settings, db_url: str) -> Service:
    service = Service(settings, db_url, None)
    source = service.sources["api"]
    assert isinstance(source, HttpSource)
    source.sleep = Sleeps()  # never really wait in a test
    return service


def close_service(service: Service) -> None:
    for source in service.sources.values():
        if isinstance(source, HttpSource) and source.client is not None:
            source.client.close()
    service.engine.dispose()


def status(cli: Any, config_path: Path, db_url: str) -> tuple[int, dict[str, Any]]:
    result = cli("--config", str(config_path), "--db", db_url, "status", "--json")
    return result.code, json.loads(result.out)


# --- 1. the JSON API --------------------------------------------------------------------------


def test_json_api_body_is_ingested_with_the_tool_user_agent(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    body = API_FIXTURE.read_bytes()
    distinct_ids = {item["paper"]["id"] for item in json.loads(body)}
    server.program(json_reply(body))
    source = make(sources, server.url("/api/daily_papers?date=2023-05-04"), tmp_path / "archive")

    result = poll_source(engine, source, NOW)

    assert not result.empty
    assert result.entries == len(distinct_ids)
    assert result.new == len(distinct_ids)
    assert result.changed
    stored = counts(engine)
    assert stored["papers"] == len(distinct_ids)
    assert stored["papers_with_arxiv_id"] == len(distinct_ids)
    assert stored["dumps"] == 1
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request.path == "/api/daily_papers?date=2023-05-04"
    assert request.headers["user-agent"].startswith("paperdigest/")
    assert "if-none-match" not in request.headers and "if-modified-since" not in request.headers


# --- 2. the archive ---------------------------------------------------------------------------


def test_body_is_archived_byte_identical_and_backfill_replays_it(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource], cli: Any, db_url: str
) -> None:
    body = API_FIXTURE.read_bytes()
    archive = tmp_path / "archive"
    server.program(json_reply(body))
    poll_source(engine, make(sources, server.url(), archive), NOW)

    files = [p for p in archive.iterdir() if p.is_file()]
    assert len(files) == 1
    assert files[0].read_bytes() == body
    assert files[0].suffix == ".json"
    assert content_hash(body)[:12] in files[0].name
    assert NOW.strftime("%Y-%m-%d") in files[0].name

    replay = cli("--db", db_url, "backfill", str(archive), "--json")
    assert replay.code == 0, replay.err
    lines = replay.json_lines()
    assert len(lines) == 1
    assert lines[0]["duplicate_dump"] is True
    assert lines[0]["entries"] == len(json.loads(body))
    assert lines[0]["new"] == lines[0]["updated"] == 0
    assert counts(engine)["dumps"] == 1


def test_ingest_url_of_a_body_already_archived_keeps_one_copy(
    server: Server, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    body = API_FIXTURE.read_bytes()
    server.program(json_reply(body), json_reply(body), json_reply(b"[]"))
    first = cli("--db", db_url, "ingest", server.url(), "--json")
    monkeypatch.setenv("PAPERDIGEST_NOW", "2030-01-02T03:04:05+00:00")  # fetched again, later
    again = cli("--db", db_url, "ingest", server.url(), "--json")
    assert first.code == again.code == 0, first.err + again.err
    assert again.json_lines()[0]["duplicate_dump"] is True
    archived = sorted((tmp_path / "state" / "archive" / "cli").iterdir())
    assert [p.read_bytes() for p in archived] == [body]
    assert cli("--db", db_url, "ingest", server.url()).code == 2  # another body (empty): a copy of its own
    assert len(list((tmp_path / "state" / "archive" / "cli").iterdir())) == 2


def test_ingest_url_of_a_page_that_is_no_listing_is_listed_by_status_until_a_good_one(
    server: Server, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    """`ingest URL` refuses a fetched body that does not parse, as it refuses a file: exit 2, and
    `status` lists it (unhealthy) until a newer good dump from the same URL settles it."""
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-03-02T09:30:00+00:00")
    server.program(Reply(200, NOT_A_LISTING.read_bytes(), {"Content-Type": HTML_TYPE}))
    assert cli("--db", db_url, "ingest", server.url("/papers")).code == 2
    shown = cli("--db", db_url, "status", "--json")
    (rejected,) = json.loads(shown.out)["rejected"]
    assert shown.code == 1 and rejected["source"] == server.url("/papers")
    assert rejected["file"].endswith(".html") and rejected["as_of"] == "2026-03-02"
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-03-03T09:30:00+00:00")
    server.program(json_reply(API_FIXTURE.read_bytes()))
    assert cli("--db", db_url, "ingest", server.url("/papers"), "--as-of", "2026-03-03").code == 0
    assert json.loads(cli("--db", db_url, "status", "--json").out)["rejected"] == []


def test_body_is_archived_even_when_it_does_not_parse(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    """The archive is written before parsing: a page that fails to parse is still kept."""
    body = NOT_A_LISTING.read_bytes()
    archive = tmp_path / "archive"
    server.program(Reply(200, body, {"Content-Type": HTML_TYPE}))
    with pytest.raises(SourceError):
        poll_source(engine, make(sources, server.url("/papers/date/2026-03-02"), archive), NOW)
    files = [p for p in archive.iterdir() if p.is_file()]
    assert [f.read_bytes() for f in files] == [body]
    assert files[0].suffix == ".html"


# --- 3. retries -------------------------------------------------------------------------------


def test_503_twice_then_200_succeeds_after_growing_waits(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    body = API_FIXTURE.read_bytes()
    server.program(Reply(503, b"busy"), Reply(503, b"busy"), json_reply(body))
    sleeps = Sleeps()
    source = make(sources, server.url(), tmp_path / "archive", sleep=sleeps)

    result = poll_source(engine, source, NOW)

    assert len(server.requests) == 3
    assert result.entries == len(json.loads(body))
    assert counts(engine)["dumps"] == 1
    assert len(sleeps) == 2
    assert 0 < sleeps[0] < sleeps[1]
    # only the good body is archived
    assert [p.read_bytes() for p in (tmp_path / "archive").iterdir()] == [body]


def test_429_waits_as_long_as_retry_after_says(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    server.program(Reply(429, b"slow down", {"Retry-After": "7"}), json_reply(API_FIXTURE.read_bytes()))
    sleeps = Sleeps()
    result = poll_source(engine, make(sources, server.url(), tmp_path / "archive", sleep=sleeps), NOW)
    assert sleeps == [7.0]
    assert len(server.requests) == 2
    assert result.entries > 0


def test_retry_after_is_capped(server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]) -> None:
    server.program(Reply(429, b"", {"Retry-After": "86400"}), json_reply(API_FIXTURE.read_bytes()))
    sleeps = Sleeps()
    poll_source(engine, make(sources, server.url(), tmp_path / "archive", sleep=sleeps), NOW)
    assert sleeps == [http_source.MAX_RETRY_AFTER]


def test_500_forever_is_a_source_error_after_four_tries(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    server.program(default=Reply(500, b"broken"))
    sleeps = Sleeps()
    with pytest.raises(SourceError, match="HTTP 500") as caught:
        poll_source(engine, make(sources, server.url(), tmp_path / "archive", sleep=sleeps), NOW)
    assert "4 tries" in str(caught.value)
    assert len(server.requests) == 4
    assert len(sleeps) == 3
    assert counts(engine)["dumps"] == 0
    assert not (tmp_path / "archive").exists() or not any((tmp_path / "archive").iterdir())


def test_retry_after_as_an_http_date(server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]) -> None:
    when = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    server.program(Reply(503, b"", {"Retry-After": when}), json_reply(API_FIXTURE.read_bytes()))
    sleeps = Sleeps()
    poll_source(engine, make(sources, server.url(), tmp_path / "archive", sleep=sleeps), NOW)
    assert len(sleeps) == 1
    assert 25 <= sleeps[0] <= 31


def test_a_redirect_is_followed(server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]) -> None:
    server.program(Reply(302, b"", {"Location": "/api/daily_papers?date=2023-05-04"}), json_reply(b"[]"))
    result = poll_source(engine, make(sources, server.url("/api/old"), tmp_path / "archive"), NOW)
    assert result.empty is True
    assert [r.path for r in server.requests] == ["/api/old", "/api/daily_papers?date=2023-05-04"]


# --- 4. conditional GET -----------------------------------------------------------------------


def test_conditional_get_sends_the_stored_validators_and_304_ingests_nothing(
    server: Server, tmp_path: Path, db_url: str
) -> None:
    body = API_FIXTURE.read_bytes()
    server.program(
        json_reply(body, ETag='"abc"', **{"Last-Modified": LAST_MODIFIED}),
        Reply(304, b"", {"ETag": '"abc"'}),
    )
    service = service_for(url_settings(server.url()), db_url)
    try:
        service.poll("api")
        archived = list((tmp_path / "state" / "archive" / "api").iterdir())  # the default archive
        assert [p.read_bytes() for p in archived] == [body]
        first = state_of(service.engine, "api")
        assert first.etag == '"abc"'
        assert first.last_modified == LAST_MODIFIED
        assert first.last_entries == len(json.loads(body))
        before = counts(service.engine)

        result = poll_source(service.engine, service.sources["api"], NOW)

        assert result.ingested == [] and result.entries == 0 and not result.changed and result.validators == {}
        assert counts(service.engine) == before
        second = server.requests[1].headers
        assert second["if-none-match"] == '"abc"'
        assert second["if-modified-since"] == LAST_MODIFIED
        assert "if-none-match" not in server.requests[0].headers
    finally:
        close_service(service)


def test_validators_written_to_source_state_are_sent(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    with engine.begin() as conn:
        queries.save_source_state(conn, "api", {"etag": '"abc"', "last_modified": LAST_MODIFIED}, exists=False)
    server.program(Reply(304))
    result = poll_source(engine, make(sources, server.url(), tmp_path / "archive"), NOW)
    assert result.ingested == [] and result.validators == {}  # 304: nothing new, validators kept
    assert server.requests[0].headers["if-none-match"] == '"abc"'
    assert server.requests[0].headers["if-modified-since"] == LAST_MODIFIED
    assert counts(engine)["dumps"] == 0
    assert not (tmp_path / "archive").exists()


def test_a_304_keeps_the_validators_and_counts_as_success(server: Server, tmp_path: Path, db_url: str) -> None:
    server.program(json_reply(API_FIXTURE.read_bytes(), ETag='"abc"'), Reply(304), Reply(304))
    service = service_for(url_settings(server.url()), db_url)
    try:
        service.poll("api")
        service.poll("api")
        service.poll("api")
        state = state_of(service.engine, "api")
        assert state.etag == '"abc"'
        assert state.last_error is None and state.failures == 0
        assert server.requests[2].headers["if-none-match"] == '"abc"'
    finally:
        close_service(service)


# --- 5. the size cap --------------------------------------------------------------------------


def test_a_body_over_the_cap_is_refused_and_nothing_is_stored(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    server.program(default=json_reply(API_FIXTURE.read_bytes()))
    with pytest.raises(SourceError, match="larger than 10000 bytes"):
        poll_source(engine, make(sources, server.url(), tmp_path / "archive", max_bytes=10_000), NOW)
    assert counts(engine) == {"papers": 0, "dumps": 0, "sightings": 0, "papers_with_arxiv_id": 0}
    assert not (tmp_path / "archive").exists() or not any((tmp_path / "archive").iterdir())


def test_a_body_under_the_cap_is_accepted(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    body = PROPS_PAGE.read_bytes()
    server.program(Reply(200, body, {"Content-Type": HTML_TYPE}))
    source = make(sources, server.url("/papers/date/2026-03-02"), tmp_path / "archive", max_bytes=len(body))
    result = poll_source(engine, source, NOW)
    assert result.entries == 4


# --- 6. errors of the transport ---------------------------------------------------------------


def test_404_names_the_status_without_retrying(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    server.program(default=Reply(404, b"no such page"))
    sleeps = Sleeps()
    with pytest.raises(SourceError, match="HTTP 404"):
        poll_source(engine, make(sources, server.url("/nowhere"), tmp_path / "archive", sleep=sleeps), NOW)
    assert len(server.requests) == 1
    assert sleeps == []
    assert counts(engine)["dumps"] == 0


def test_connection_refused_is_a_source_error_after_retries(
    engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    sleeps = Sleeps()
    source = make(sources, f"http://127.0.0.1:{free_port()}/api", tmp_path / "archive", sleep=sleeps)
    with pytest.raises(SourceError, match="cannot connect") as caught:
        poll_source(engine, source, NOW)
    assert "4 tries" in str(caught.value)
    assert len(sleeps) == 3


def test_a_server_slower_than_the_read_timeout_is_a_source_error(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_source, "TIMEOUT", httpx.Timeout(0.5))
    server.program(default=Reply(200, API_FIXTURE.read_bytes(), {"Content-Type": JSON_TYPE}, delay=3.0))
    sleeps = Sleeps()
    with pytest.raises(SourceError, match="timed out"):
        poll_source(engine, make(sources, server.url(), tmp_path / "archive", sleep=sleeps), NOW)
    assert len(server.requests) == 4
    assert counts(engine)["dumps"] == 0


# --- 7. zero entries --------------------------------------------------------------------------


def test_an_empty_listing_is_not_an_error_but_is_flagged_empty(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    server.program(json_reply(b"[]"))
    result = poll_source(engine, make(sources, server.url("/api/daily_papers?p=99"), tmp_path / "archive"), NOW)
    assert result.empty is True
    assert result.entries == 0 and result.rejected == []
    assert counts(engine)["dumps"] == 0
    assert [p.read_bytes() for p in (tmp_path / "archive").iterdir()] == [b"[]"]  # archived all the same


@pytest.mark.parametrize("body", [b"[ ]", b"[\n]\n", b"\xef\xbb\xbf[]"], ids=["space", "newline", "bom"])
def test_an_empty_array_in_any_spelling_is_an_empty_listing(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource], body: bytes
) -> None:
    """`[ ]` is as empty as `[]`: zero entries, a warning, never a parse failure."""
    server.program(json_reply(body))
    result = poll_source(engine, make(sources, server.url("/api/daily_papers?p=99"), tmp_path / "archive"), NOW)
    assert result.empty is True


def test_an_empty_listing_after_a_good_one_is_a_warning_and_status_fails(
    server: Server, tmp_path: Path, db_url: str, cli: Any
) -> None:
    server.program(json_reply(API_FIXTURE.read_bytes()), json_reply(b"[]"))
    settings = url_settings(server.url())
    service = service_for(settings, db_url)
    try:
        service.poll("api")
        assert health.source_health(settings.sources[0], state_of(service.engine, "api"), NOW).state == "ok"
        service.poll("api")
        state = state_of(service.engine, "api")
    finally:
        close_service(service)
    assert state.last_entries == 0
    assert state.last_error is None
    verdict = health.source_health(settings.sources[0], state, dt.datetime.now(dt.UTC))
    assert verdict.state == "warning"
    assert not verdict.healthy

    code, report = status(cli, write_config(tmp_path, server.url()), db_url)
    assert code == 1
    assert report["healthy"] is False
    assert report["sources"][0]["state"] == "warning"


def test_an_empty_first_poll_is_a_warning_and_status_fails(
    server: Server, tmp_path: Path, db_url: str, cli: Any
) -> None:
    """A source whose very first answer is `[]`: zero entries is the diagnosis to show."""
    server.program(json_reply(b"[]"))
    settings = url_settings(server.url())
    service = service_for(settings, db_url)
    try:
        service.poll("api")
        state = state_of(service.engine, "api")
    finally:
        close_service(service)
    assert state.last_entries == 0
    assert state.last_error is None and state.last_success_at is not None

    code, report = status(cli, write_config(tmp_path, server.url()), db_url)
    assert code == 1
    assert report["healthy"] is False
    verdict = health.source_health(settings.sources[0], state, dt.datetime.now(dt.UTC))
    assert not verdict.healthy
    assert verdict.state == "warning"  # not "stale": it was polled a moment ago


# --- 8. HTML pages ----------------------------------------------------------------------------


def test_an_html_page_with_props_is_ingested(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    server.program(Reply(200, PROPS_PAGE.read_bytes(), {"Content-Type": HTML_TYPE}))
    result = poll_source(engine, make(sources, server.url("/papers/date/2026-03-02"), tmp_path / "archive"), NOW)
    assert result.entries == 4
    stored = counts(engine)
    assert stored["papers"] == 4 and stored["papers_with_arxiv_id"] == 4
    with engine.connect() as conn:
        assert [d.layout for d in queries.last_dumps(conn, 5)] == ["html"]


def test_an_html_page_without_a_listing_is_a_parse_error_and_the_source_fails(
    server: Server, tmp_path: Path, db_url: str, cli: Any
) -> None:
    page = NOT_A_LISTING.read_bytes()
    server.program(default=Reply(200, page, {"Content-Type": HTML_TYPE}))
    url = server.url("/papers/date/2026-03-02")
    settings = url_settings(url)
    service = service_for(settings, db_url)
    try:
        with pytest.raises(SourceError, match="did not parse"):
            poll_source(service.engine, service.sources["api"], NOW)
        service.poll("api")
        state = state_of(service.engine, "api")
        assert counts(service.engine)["dumps"] == 0
    finally:
        close_service(service)
    assert state.last_error is not None and "DailyPapers" in state.last_error
    assert state.last_error_at is not None and state.last_success_at is None
    assert state.failures == 1
    verdict = health.source_health(settings.sources[0], state, dt.datetime.now(dt.UTC))
    assert verdict.state == "failing"

    code, report = status(cli, write_config(tmp_path, url), db_url)
    assert code == 1
    assert report["sources"][0]["state"] == "failing"
    assert "did not parse" in report["sources"][0]["last_error"]


def test_a_failure_after_a_success_is_failing_and_a_later_success_recovers(
    server: Server, tmp_path: Path, db_url: str
) -> None:
    server.program(
        json_reply(API_FIXTURE.read_bytes()),
        Reply(404, b"gone"),
        Reply(200, PROPS_PAGE.read_bytes(), {"Content-Type": HTML_TYPE}),
    )
    settings = url_settings(server.url())
    service = service_for(settings, db_url)
    try:
        service.poll("api")
        service.poll("api")
        failed = state_of(service.engine, "api")
        service.poll("api")
        recovered = state_of(service.engine, "api")
    finally:
        close_service(service)
    source = settings.sources[0]
    assert failed.failures == 1 and "HTTP 404" in failed.last_error
    assert health.source_health(source, failed, dt.datetime.now(dt.UTC)).state == "failing"
    assert recovered.failures == 0
    assert health.source_health(source, recovered, dt.datetime.now(dt.UTC)).state == "ok"


def test_an_archive_that_cannot_be_written_is_a_source_failure(server: Server, tmp_path: Path, db_url: str) -> None:
    """A full disk or a bad archive folder must show as a failing source, not escape the poll."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive folder should be\n", encoding="utf-8")
    server.program(default=json_reply(API_FIXTURE.read_bytes()))
    settings = url_settings(server.url())
    service = service_for(settings, db_url)
    try:
        source = service.sources["api"]
        assert isinstance(source, HttpSource)
        source.archive = blocker / "archive"
        with pytest.raises(SourceError):
            poll_source(service.engine, source, NOW)
        service.poll("api")  # must not raise: the failure is recorded
        state = state_of(service.engine, "api")
        assert counts(service.engine)["dumps"] == 0  # never parsed without its archive copy
    finally:
        close_service(service)
    assert state is not None and state.last_error is not None
    assert health.source_health(settings.sources[0], state, dt.datetime.now(dt.UTC)).state == "failing"


# --- 9. stale ---------------------------------------------------------------------------------


def _state(**values: Any) -> SimpleNamespace:
    base: dict[str, Any] = {
        "last_poll_at": None,
        "last_success_at": None,
        "last_change_at": None,
        "last_error_at": None,
        "last_error": None,
        "last_entries": None,
        "failures": 0,
        "etag": None,
        "last_modified": None,
    }
    return SimpleNamespace(**{**base, **values})


def test_a_source_unchanged_for_longer_than_stale_after_is_stale() -> None:
    source = SourceSettings(name="api", kind="url", url="http://127.0.0.1:9/api", stale_after="1d")
    recent = NOW - dt.timedelta(minutes=5)
    stale = _state(
        last_poll_at=recent, last_success_at=recent, last_change_at=NOW - dt.timedelta(days=3), last_entries=259
    )
    verdict = health.source_health(source, stale, NOW)
    assert verdict.state == "stale"
    assert not verdict.healthy
    assert verdict.since_change == dt.timedelta(days=3)

    fresh = _state(last_poll_at=recent, last_success_at=recent, last_change_at=NOW - dt.timedelta(hours=2))
    assert health.source_health(source, fresh, NOW).state == "ok"


def test_the_same_bytes_served_past_stale_after_turn_the_source_stale(
    server: Server, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    body = API_FIXTURE.read_bytes()
    server.program(default=json_reply(body))
    settings = url_settings(server.url(), stale_after="1d")
    service = service_for(settings, db_url)
    start = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    later = start + dt.timedelta(days=2)
    try:
        monkeypatch.setenv("PAPERDIGEST_NOW", start.isoformat())
        service.poll("api")
        monkeypatch.setenv("PAPERDIGEST_NOW", later.isoformat())
        service.poll("api")  # the same bytes: a duplicate dump, no change
        state = state_of(service.engine, "api")
    finally:
        close_service(service)
    assert clock.as_utc(state.last_change_at) == start
    assert clock.as_utc(state.last_success_at) == later
    assert health.source_health(settings.sources[0], state, later).state == "stale"

    config_path = tmp_path / "stale.toml"
    config_path.write_text(
        f'[[sources]]\nname = "api"\nkind = "url"\nurl = "{server.url()}"\nstale_after = "1d"\n', encoding="utf-8"
    )
    code, report = status(cli, config_path, db_url)
    assert code == 1
    assert report["sources"][0]["state"] == "stale"


# --- parse and ingest of a URL from the command line -----------------------------------------


def test_parse_and_ingest_take_a_url(server: Server, cli: Any, tmp_path: Path, db_url: str) -> None:
    body = API_FIXTURE.read_bytes()
    server.program(json_reply(body), json_reply(body), json_reply(body))
    url = server.url("/api/daily_papers?date=2023-05-04")
    parsed = cli("parse", url)
    assert parsed.code == 0, parsed.err
    assert len(parsed.json_lines()) == len(json.loads(body))
    assert not (tmp_path / "state" / "archive").exists()  # parse stores nothing
    db = db_url
    ingested = cli("--db", db, "ingest", url, "--json")
    assert ingested.code == 0, ingested.err
    (line,) = ingested.json_lines()
    archived = list((tmp_path / "state" / "archive" / "cli").iterdir())
    assert len(archived) == 1 and archived[0].read_bytes() == body  # kept before it was parsed
    assert line["source"] == str(archived[0]) and line["new"] == len({i["paper"]["id"] for i in json.loads(body)})
    again = cli("--db", db, "ingest", url, "--json")
    assert again.json_lines()[0]["duplicate_dump"] is True
    missing = cli("parse", server.url("/nothing"))
    assert missing.code == 1 and "HTTP 404" in missing.err


# --- 10. deadlines, the fetch budget, and where redirects may lead -----------------------------

DEADLINE = 0.5  # seconds: what the tests give one attempt


def limits_settings(url: str, **limits: float) -> Settings:
    return config.validate(
        {"sources": [{"name": "api", "kind": "url", "url": url}], "limits": limits or {"fetch_deadline": DEADLINE}},
        "t",
    )


def timed_failure(source: HttpSource, engine: Engine) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        poll_source(engine, source, NOW)
    return str(caught.value), time.monotonic() - started


def test_a_body_trickled_slower_than_the_deadline_fails_within_about_the_deadline(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    """One byte every 20 ms, each well within the read timeout: only the deadline ends it."""
    server.program(default=Reply(200, API_FIXTURE.read_bytes()[:200], {"Content-Type": JSON_TYPE}, trickle=0.02))
    sleeps = Sleeps()
    source = make(sources, server.url(), tmp_path / "archive", sleep=sleeps, deadline=DEADLINE)
    message, took = timed_failure(source, engine)
    assert "took longer than the deadline of 0.5 s" in message and "fetch_deadline" in message
    assert DEADLINE <= took < DEADLINE + 1.0
    assert len(server.requests) == 1 and sleeps == []  # a server this slow is not tried again in this poll
    assert counts(engine)["dumps"] == 0
    assert not (tmp_path / "archive").exists()


def test_headers_trickled_slower_than_the_deadline_are_cut_off_too(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    """Before the body there is no chunk loop to check the clock: the socket is cut instead."""
    reply = Reply(200, b"[]", {"Content-Type": JSON_TYPE, "X-Padding": "x" * 200}, trickle=0.02, trickle_headers=True)
    server.program(default=reply)
    message, took = timed_failure(make(sources, server.url(), tmp_path / "archive", deadline=DEADLINE), engine)
    assert "took longer than the deadline" in message
    assert DEADLINE <= took < DEADLINE + 1.0
    assert len(server.requests) == 1


def test_a_server_silent_mid_body_is_cut_at_the_deadline_not_the_read_timeout(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    """The read timeout is 30 s; the deadline ends the wait for a server that stopped sending."""
    server.program(default=Reply(200, API_FIXTURE.read_bytes(), {"Content-Type": JSON_TYPE}, stall_after=100))
    assert http_source.TIMEOUT.read is not None and http_source.TIMEOUT.read > 10
    message, took = timed_failure(make(sources, server.url(), tmp_path / "archive", deadline=DEADLINE), engine)
    assert "took longer than the deadline" in message
    assert took < DEADLINE + 1.0
    assert len(server.requests) == 1


def test_a_trickling_server_shows_as_a_failing_source(server: Server, tmp_path: Path, db_url: str, cli: Any) -> None:
    """[limits] fetch_deadline from the config reaches the daemon's source; the failure is recorded."""
    server.program(default=Reply(200, API_FIXTURE.read_bytes()[:200], {"Content-Type": JSON_TYPE}, trickle=0.02))
    settings = limits_settings(server.url())
    service = service_for(settings, db_url)
    try:
        started = time.monotonic()
        service.poll("api")  # never raises: the failure is the source's
        took = time.monotonic() - started
        state = state_of(service.engine, "api")
    finally:
        close_service(service)
    assert took < DEADLINE + 1.0
    assert state.failures == 1 and "took longer than the deadline of 0.5 s" in state.last_error
    assert health.source_health(settings.sources[0], state, dt.datetime.now(dt.UTC)).state == "failing"
    code, report = status(cli, write_config(tmp_path, server.url()), db_url)
    assert code == 1 and report["sources"][0]["state"] == "failing"


def test_retries_stop_before_their_waits_would_pass_the_budget(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    """Backoff 0.5, 1, 2 s (really slept) in a budget of 2 s: tries at 0, 0.5 and 1.5 s; the third
    wait would end at 3.5 s, so it is not started."""
    server.program(default=Reply(500, b"broken"))
    source = make(sources, server.url(), tmp_path / "archive", sleep=time.sleep, backoff=0.5, deadline=1.0, budget=2.0)
    message, took = timed_failure(source, engine)
    assert len(server.requests) == 3
    assert "HTTP 500 (after 3 tries: waiting 2 s for another would pass the fetch's budget of 2 s)" in message
    assert 1.5 <= took < 2.0


def test_a_retry_after_longer_than_the_budget_is_not_waited_for(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    server.program(default=Reply(429, b"slow down", {"Retry-After": "45"}))
    sleeps = Sleeps()
    source = make(sources, server.url(), tmp_path / "archive", sleep=sleeps, deadline=10.0, budget=30.0)
    message, _ = timed_failure(source, engine)
    assert len(server.requests) == 1 and sleeps == []
    assert "HTTP 429 (after 1 tries: waiting 45 s for another would pass the fetch's budget of 30 s)" in message


def test_the_default_budget_still_allows_every_retry_of_a_flaky_server(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    """Three Retry-After waits of 50 s fit the default budget (180 s): a flaky server keeps its four tries."""
    server.program(*[Reply(503, b"busy", {"Retry-After": "50"})] * 3, json_reply(API_FIXTURE.read_bytes()))
    sleeps = Sleeps()
    result = poll_source(engine, make(sources, server.url(), tmp_path / "archive", sleep=sleeps), NOW)
    assert sleeps == [50.0, 50.0, 50.0] and result.entries > 0


@pytest.mark.parametrize(
    ("location", "scheme"),
    [
        ("file:///etc/passwd", "file"),
        ("ftp://example.org/daily_papers.json", "ftp"),
        ("javascript:alert(1)", "javascript"),
        ("data:application/json,[]", "data"),
    ],
)
def test_a_redirect_to_a_non_http_url_is_a_permanent_error(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource], location: str, scheme: str
) -> None:
    server.program(default=Reply(302, b"", {"Location": location}))
    sleeps = Sleeps()
    message, _ = timed_failure(make(sources, server.url(), tmp_path / "archive", sleep=sleeps), engine)
    assert f"redirected to a {scheme}: URL; only http and https are followed" in message
    assert "not retried" in message
    assert len(server.requests) == 1 and sleeps == []
    assert counts(engine)["dumps"] == 0


def test_parse_of_a_url_redirected_to_a_file_is_refused_once(server: Server, cli: Any) -> None:
    server.program(default=Reply(302, b"", {"Location": "file:///etc/passwd"}))
    result = cli("parse", server.url())
    assert result.code == 1 and "redirected to a file: URL" in result.err
    assert len(server.requests) == 1


def test_redirects_across_hosts_and_schemes_of_http_are_followed(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    """Absolute and relative, 301/307/308: followed; the deadline spans the whole chain."""
    absolute = server.base.replace("127.0.0.1", "localhost") + "/b"
    server.program(
        Reply(301, b"", {"Location": absolute}),
        Reply(307, b"", {"Location": "/c"}),
        Reply(308, b"", {"Location": server.url("/api/daily_papers?date=2023-05-04")}),
        json_reply(API_FIXTURE.read_bytes()),
    )
    result = poll_source(engine, make(sources, server.url("/a"), tmp_path / "archive", deadline=DEADLINE), NOW)
    assert result.entries > 0
    assert [r.path for r in server.requests] == ["/a", "/b", "/c", "/api/daily_papers?date=2023-05-04"]


def test_a_redirect_loop_ends_after_max_redirects_without_retrying(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    server.program(default=Reply(302, b"", {"Location": "/loop"}))
    sleeps = Sleeps()
    message, _ = timed_failure(make(sources, server.url("/loop"), tmp_path / "archive", sleep=sleeps), engine)
    assert "TooManyRedirects: more than 20 redirects" in message
    assert len(server.requests) == http_source.MAX_REDIRECTS + 1 == 21
    assert sleeps == []


def test_a_body_announced_over_the_cap_is_refused_before_it_is_read(
    server: Server, engine: Engine, tmp_path: Path, sources: list[HttpSource]
) -> None:
    """Content-Length says 50 000 bytes, the cap is 10 000: refused at the headers, not after
    waiting on a server that (here) never sends them."""
    server.program(default=Reply(200, b"[", {"Content-Type": JSON_TYPE}, stall_after=1, length=50_000))
    source = make(sources, server.url(), tmp_path / "archive", max_bytes=10_000)
    message, took = timed_failure(source, engine)
    assert "larger than 10000 bytes (50000 bytes announced)" in message and "max_dump_bytes" in message
    assert took < 1.0 and len(server.requests) == 1


def test_max_dump_bytes_from_the_config_caps_the_body(server: Server, tmp_path: Path, db_url: str) -> None:
    server.program(default=json_reply(API_FIXTURE.read_bytes()))
    service = service_for(limits_settings(server.url(), max_dump_bytes=10_000), db_url)
    try:
        service.poll("api")
        state = state_of(service.engine, "api")
    finally:
        close_service(service)
    assert "larger than 10000 bytes" in state.last_error


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://256.256.256.256/", "Invalid IPv4 address: '256.256.256.256'"),
        ("http:///papers", "no host"),
        ("http://", "no host"),
        ("http://127.0.0.1:99999/papers", "port 99999 is out of range 1-65535"),
    ],
)
def test_a_url_on_the_command_line_that_names_no_server_is_bad_input(
    cli: Any, tmp_path: Path, url: str, reason: str
) -> None:
    """`ingest URL` / `parse URL` with a URL no request can be made to: exit 2 at once, one line
    saying why; no request, no retries (it used to be exit 1, 'led to a URL that is not http(s)')."""
    db = f"sqlite:///{tmp_path / 'papers.db'}"
    for command in ("parse", "ingest"):
        result = cli("--db", db, command, url)
        assert (result.code, result.out) == (2, ""), result.err
        lines = result.err.splitlines()
        assert len(lines) == 1 and lines[0].endswith(f"not an http(s) URL a request can be made to: {reason}")
