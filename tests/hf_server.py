"""A loopback stand-in for the daily-papers API, answering from the real sample of May 2023.

    GET /api/daily_papers?date=YYYY-MM-DD&p=N&limit=L

answers the sample's items featured that day (`paper.submittedOnDailyAt`, else `publishedAt`), in
the sample's order, page N of L items (`[]` past the end; `limit` defaults to 50, as the real
client's); a day with none (every Saturday of the sample, and May 1-3) is `[]`. Each answer has an
ETag, and a request whose If-None-Match matches it gets 304. A test can queue answers to give
first (a 429 with Retry-After, a 500), change the items (`items`), and read every request made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import urllib.parse
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import FIXTURES

SAMPLE = FIXTURES / "hf_daily_papers_2023-05.json"
PATH = "/api/daily_papers"
DEFAULT_LIMIT = 50


def featured_on(item: dict[str, Any]) -> dt.date:
    """The day an item was featured: `paper.submittedOnDailyAt`, else the item's `publishedAt`."""
    stamp = item["paper"].get("submittedOnDailyAt") or item["publishedAt"]
    return dt.date.fromisoformat(stamp[:10])


def sample_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(SAMPLE.read_bytes())
    return items


@dataclass
class Canned:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names


class DailyPapersServer:
    def __init__(self, items: list[dict[str, Any]] | None = None) -> None:
        self.items = items if items is not None else sample_items()
        self.canned: deque[Canned] = deque()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                with server.lock:
                    server.requests.append(Request(parts.path, query, {k.lower(): v for k, v in self.headers.items()}))
                    canned = server.canned.popleft() if server.canned else None
                reply = canned or server.answer(parts.path, query, self.headers.get("If-None-Match"))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.status != 304:
                    self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def answer(self, path: str, query: dict[str, str], if_none_match: str | None) -> Canned:
        if path != PATH:
            return Canned(404, b'{"error":"not found"}')
        try:
            day = dt.date.fromisoformat(query["date"])
            page, limit = int(query.get("p", "0")), int(query.get("limit", str(DEFAULT_LIMIT)))
        except (KeyError, ValueError):
            return Canned(400, b'{"error":"date must be YYYY-MM-DD"}')
        with self.lock:
            featured = [item for item in self.items if featured_on(item) == day]
        body = json.dumps(featured[page * limit : (page + 1) * limit], indent=2).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = {"Content-Type": "application/json; charset=utf-8", "ETag": etag}
        if if_none_match == etag:
            return Canned(304, b"", headers)
        return Canned(200, body, headers)

    def days(self, first: dt.date, last: dt.date) -> dict[dt.date, int]:
        """How many items the server has for each day from `first` to `last`."""
        days = {first + dt.timedelta(days=n): 0 for n in range((last - first).days + 1)}
        for item in self.items:
            if featured_on(item) in days:
                days[featured_on(item)] += 1
        return days

    def asked(self) -> list[tuple[str, int]]:
        """(date, page) of every request made to the API, in order."""
        return [(r.query.get("date", ""), int(r.query.get("p", "0"))) for r in self.requests if r.path == PATH]

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    @property
    def site(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"


@contextmanager
def serving(items: list[dict[str, Any]] | None = None) -> Iterator[DailyPapersServer]:
    server = DailyPapersServer(items)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
