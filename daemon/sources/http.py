"""HTTP sources: the daily-papers JSON API or HTML listing pages, fetched with httpx.

Connect/read timeouts, a response size cap, retries with backoff on 5xx and 429 (honouring
Retry-After), conditional GET (ETag / Last-Modified) and a User-Agent naming the tool.
Every body fetched is archived as a dump file before it is parsed, so `backfill` can
replay history.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from paperdigest import __version__
from paperdigest.errors import BadInputError, EmptyListingError, SourceError
from paperdigest.ingest import apply
from paperdigest.model import RawDump
from paperdigest.parse import content_hash, parse_dump
from paperdigest.paths import private_dir, state_dir, write_atomically
from paperdigest.sources.directory import PollResult
from paperdigest.store import queries

log = logging.getLogger("paperdigest.sources")

USER_AGENT = f"paperdigest/{__version__} (+https://github.com/paperdigest)"
MAX_BYTES = 20 * 1024 * 1024
TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=10.0)
RETRIES = 3
MAX_RETRY_AFTER = 60.0


def redact(url: str) -> str:
    """A URL fit for logs: no user or password, query values hidden (they may be tokens)."""
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    query = "&".join(f"{key}=…" for key, _ in parts.params.multi_items())
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}{parts.path}" + (f"?{query}" if query else "")


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


@dataclass
class HttpSource:
    name: str
    url: str
    client: httpx.Client | None = None
    archive: Path | None = None
    sleep: Any = field(default=time.sleep)
    backoff: float = 1.0

    def _client(self) -> httpx.Client:
        if self.client is None:
            self.client = httpx.Client(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT}, follow_redirects=True)
        return self.client

    def fetch(self, headers: dict[str, str]) -> tuple[httpx.Headers, bytes] | None:
        """The response (None for 304), after retries; SourceError when it cannot be had."""
        last = ""
        for attempt in range(RETRIES + 1):
            try:
                with self._client().stream("GET", self.url, headers=headers) as response:
                    if response.status_code == 304:
                        return None
                    if response.status_code == 429 or response.status_code >= 500:
                        last = f"HTTP {response.status_code}"
                        wait = retry_after(response.headers.get("Retry-After"), time.time())
                        if attempt < RETRIES:
                            self.sleep(min(wait if wait is not None else self.backoff * 2**attempt, MAX_RETRY_AFTER))
                            continue
                        break
                    if response.status_code >= 400:
                        raise SourceError(
                            f"source {self.name}: {redact(self.url)} answered HTTP {response.status_code}"
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_BYTES:
                            raise SourceError(f"source {self.name}: response larger than {MAX_BYTES} bytes: refused")
                    return response.headers, bytes(body)
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as exc:
                last = f"cannot connect: {exc.__class__.__name__}"
            except httpx.HTTPError as exc:  # redirect loops, broken encodings: not worth retrying
                raise SourceError(f"source {self.name}: {redact(self.url)}: {exc.__class__.__name__}") from None
            if attempt < RETRIES:
                self.sleep(self.backoff * 2**attempt)
        raise SourceError(f"source {self.name}: {redact(self.url)}: {last} (after {RETRIES + 1} tries)")

    def poll(self, engine: Engine, now: dt.datetime) -> PollResult:
        result = PollResult(self.name)
        with engine.connect() as conn:
            state = queries.source_state(conn, self.name)
        headers = {}
        if state is not None and state.etag:
            headers["If-None-Match"] = state.etag
        if state is not None and state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        fetched = self.fetch(headers)
        if fetched is None:
            result.not_modified = True
            return result
        response_headers, body = fetched
        result.validators = {
            "etag": response_headers.get("ETag"),
            "last_modified": response_headers.get("Last-Modified"),
        }
        path = self.archive_body(body, response_headers.get("Content-Type", ""), now)
        try:
            listing = parse_dump(RawDump(str(path), body, now.timestamp()), now.date())
        except EmptyListingError:
            log.warning("source %s: the listing is empty (zero entries)", self.name)
            result.empty = True
            return result
        except BadInputError as exc:
            raise SourceError(f"source {self.name}: the page did not parse: {exc}") from None
        result.ingested.append(apply(engine, listing))
        return result

    def archive_body(self, body: bytes, content_type: str, now: dt.datetime) -> Path:
        """Keep the body as a dump file, named by the fetch time and its hash; a body archived
        before (the same bytes) is not written again: its first copy is returned."""
        folder = self.archive or state_dir() / "archive" / self.name
        suffix = ".json" if "json" in content_type else ".html" if "html" in content_type else ".txt"
        digest = content_hash(body)
        path = folder / f"{now:%Y-%m-%d_%H%M%S}_{digest[:12]}{suffix}"
        try:
            earlier = _archived(folder, digest, suffix)
            if earlier is not None:
                return earlier
            private_dir(folder)
            write_atomically(path, body)
        except OSError as exc:
            raise SourceError(f"source {self.name}: cannot archive the body in {folder}: {exc.strerror}") from None
        return path


def _archived(folder: Path, digest: str, suffix: str) -> Path | None:
    """The file in `folder` already holding a body with this SHA-256, if any."""
    if not folder.is_dir():
        return None
    for candidate in sorted(folder.glob(f"*_{digest[:12]}{suffix}")):
        if candidate.is_file() and content_hash(candidate.read_bytes()) == digest:
            return candidate
    return None


def fetch_dump(url: str, archive: bool = True, now: dt.datetime | None = None) -> RawDump:
    """One listing fetched for `parse` / `ingest URL`: same client rules as the daemon's sources."""
    from paperdigest import clock

    now = now or clock.now()
    source = HttpSource("cli", url)
    try:
        fetched = source.fetch({})
    finally:
        if source.client is not None:
            source.client.close()
    if fetched is None:  # 304 without validators cannot happen; be explicit anyway
        raise SourceError(f"{redact(url)}: the server answered 304 Not Modified to a plain GET")
    headers, body = fetched
    name = redact(url)
    if archive:
        name = str(source.archive_body(body, headers.get("Content-Type", ""), now))
    return RawDump(name, body, now.timestamp())
