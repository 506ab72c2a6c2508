"""The daily-papers API by date (`kind = "huggingface"`): one dump per day, captured at that date.

    days = today, and the days since the last complete one   # a missed day is caught up
    for day in days (oldest first):
        GET {url}?date=DAY&p=0,1,...&limit=N                  # until a page is short; [] past the end
        a day of no papers: no dump (weekends and holidays are; health.py judges the rest)
        else one dump: the pages' items in the order served, archived as DAY_fetched-TIME_HASH.json
    complete through yesterday                                 # the job records it for the next poll

Polite: at most one request a second through the clock seam (the Hub allows an anonymous client
about 500 API calls per 5 minutes), 429 and 5xx retried with Retry-After honoured and a conditional
GET of today's first page (both by http.py's client). Like every source it only fetches: the job
parses, stores and records. The page bodies are read as far as paging needs (how many items).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field

import httpx

from paperdigest import clock
from paperdigest.config import LimitsSettings, SourceSettings
from paperdigest.errors import SourceError
from paperdigest.model import Day, Fetched, Found, RawDump, SourceMemory
from paperdigest.parse import content_hash
from paperdigest.sources.http import HttpSource

log = logging.getLogger("paperdigest.sources")

DEFAULT_PAGE_SIZE = 50  # the API's own default `limit`
MIN_INTERVAL = 1.0  # seconds between two requests: 300 per 5 minutes at most, under the anonymous 500
MAX_PAGES = 40  # pages of one day; more is a server that does not page
MAX_CATCH_UP = 31  # days one poll catches up; older ones are history: `backfill --source`
ONE_DAY = dt.timedelta(days=1)


def days_to_fetch(complete_through: dt.date | None, today: dt.date, limit: int = MAX_CATCH_UP) -> list[dt.date]:
    """Today, and the days since the last complete one (at most `limit` days in all), oldest first."""
    start = today if complete_through is None else min(complete_through + ONE_DAY, today)
    start = max(start, today - (limit - 1) * ONE_DAY)
    return [start + n * ONE_DAY for n in range((today - start).days + 1)]


@dataclass
class Pacer:
    """At most one request every `interval` seconds, waiting through the clock seam (looked up at
    each wait, so that a test's clock stands in for it)."""

    interval: float = MIN_INTERVAL
    last: float | None = None

    def wait(self) -> None:
        now = clock.monotonic()
        if self.last is not None and now < self.last + self.interval:
            clock.sleep(self.last + self.interval - now)
            now = max(clock.monotonic(), self.last + self.interval)
        self.last = now


@dataclass(frozen=True, slots=True)
class DayListing:
    """One day as fetched: its dump (None when it held no papers, or had not changed), how many items
    it held (None: not changed), and the validators of its first page."""

    found: Found | None
    day: Day
    validators: dict[str, str | None]


@dataclass
class HuggingFaceSource:
    name: str
    http: HttpSource  # the client: caps, deadlines, retries, Retry-After, conditional GET, the archive
    page_size: int = DEFAULT_PAGE_SIZE
    pacer: Pacer = field(default_factory=Pacer)
    catch_up: int = MAX_CATCH_UP

    @classmethod
    def configured(cls, settings: SourceSettings, limits: LimitsSettings) -> HuggingFaceSource:
        http = HttpSource.configured(settings.name, settings.api_url, limits)
        http.sleep = _wait  # its waits between retries too go through the clock seam
        return cls(settings.name, http, page_size=settings.page_size or DEFAULT_PAGE_SIZE)

    @property
    def url(self) -> str:
        return self.http.url

    def fetch(self, memory: SourceMemory, now: dt.datetime) -> Fetched:
        """Today and the days since the last complete one, each day a dump captured at that date.
        The validators kept from the last poll are those of its newest day's first page, which
        is the day after the last complete one."""
        today = now.astimezone(dt.UTC).date()
        fetched = Fetched(failing_when_bad=True, validators=memory.validators)
        remembered = memory.complete_through + ONE_DAY if memory.complete_through is not None else None
        for day in days_to_fetch(memory.complete_through, today, self.catch_up):
            listing = self.fetch_day(day, now, memory.validators if day == remembered else None)
            fetched.days.append(listing.day)
            if listing.found is not None:
                fetched.found.append(listing.found)
            fetched.validators = listing.validators  # the newest day's, for the next poll
        yesterday = today - ONE_DAY
        fetched.complete_through = max(yesterday, memory.complete_through or yesterday)
        return fetched

    def fetch_day(
        self, day: dt.date, now: dt.datetime, validators: dict[str, str | None] | None = None
    ) -> DayListing:
        """One day's listing, every page of it; archived as one dump when it holds papers."""
        bodies: list[bytes] = []
        items: list[object] = []
        kept = dict(validators or {})
        for page in range(MAX_PAGES):
            headers = _conditional(validators) if page == 0 else {}
            self.pacer.wait()
            try:
                got = self.http.get(headers, self.page_url(day, page))
            except SourceError as exc:  # the URL in its message hides the query: name the day
                prefix = f"source {self.name}: "
                raise SourceError(f"{prefix}{day} page {page}: {str(exc).removeprefix(prefix)}") from exc
            if got is None:  # 304 on the first page: the day's listing is as it was
                return DayListing(None, Day(day, None), kept)
            response_headers, body = got
            if page == 0:
                kept = {"etag": response_headers.get("ETag"), "last_modified": response_headers.get("Last-Modified")}
            page_items = self._items(body, day, page)
            if page_items:
                bodies.append(body)
                items += page_items
            if len(page_items) < self.page_size:
                break
        else:
            log.warning("source %s: %s: stopped after %d pages of %d", self.name, day, MAX_PAGES, self.page_size)
        if not items:
            return DayListing(None, Day(day, 0), kept)
        data = _joined(bodies, items)
        path = self.http.archive_body(data, "application/json", now, day=day)
        raw = RawDump(str(path), data, now.timestamp())
        return DayListing(Found(path.name, content_hash(data), day, raw, as_of=day), Day(day, len(items)), kept)

    def page_url(self, day: dt.date, page: int) -> str:
        url = httpx.URL(self.url)
        return str(url.copy_merge_params({"date": day.isoformat(), "p": page, "limit": self.page_size}))

    def _items(self, body: bytes, day: dt.date, page: int) -> list[object]:
        """The items of one page (how paging knows where the day ends)."""
        try:
            data = json.loads(body)
        except ValueError as exc:  # a cut-off answer, or a page that is not JSON (an HTML error page)
            where = f"{exc.msg}: byte {exc.pos} of {len(body)}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            cut = "; cut off?" if body.lstrip()[:1] in (b"[", b"{") else ""
            raise SourceError(f"source {self.name}: {day} page {page}: the answer is not JSON ({where}{cut})") from None
        except RecursionError:
            data = None
        if not isinstance(data, list):
            raise SourceError(
                f"source {self.name}: {day} page {page}: the answer is not a JSON array of daily-papers items"
            )
        return data

    def changed_since_read(self, found: Found) -> bool:
        return False  # a fetched listing is archived once and never changes


def _wait(seconds: float) -> None:
    clock.sleep(seconds)


def _conditional(validators: dict[str, str | None] | None) -> dict[str, str]:
    headers = {}
    if validators and validators.get("etag"):
        headers["If-None-Match"] = str(validators["etag"])
    if validators and validators.get("last_modified"):
        headers["If-Modified-Since"] = str(validators["last_modified"])
    return headers


def _joined(bodies: list[bytes], items: list[object]) -> bytes:
    """One day's dump: a single page as served, byte for byte; pages joined into one array (their
    items' bytes kept) when there are more; re-written only for a body that is no plain UTF-8 array."""
    if len(bodies) == 1:
        return bodies[0]
    inner = [body.strip() for body in bodies]
    if all(part.startswith(b"[") and part.endswith(b"]") for part in inner):
        return b"[" + b",".join(part[1:-1].strip() for part in inner) + b"]"
    return json.dumps(items, ensure_ascii=False).encode("utf-8")
