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
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from paperdigest import __version__, clock
from paperdigest.config import MAX_DUMP_BYTES, LimitsSettings
from paperdigest.errors import SourceError, UsageError
from paperdigest.model import Fetched, Found, RawDump, SourceMemory
from paperdigest.parse import content_hash
from paperdigest.paths import private_dir, state_dir, write_atomically
from paperdigest.sources.deadline import Cutoff

log = logging.getLogger("paperdigest.sources")

USER_AGENT = f"paperdigest/{__version__} (+https://github.com/paperdigest)"
MAX_BYTES = MAX_DUMP_BYTES  # the default of [limits] max_dump_bytes
TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=10.0)  # each one, within the deadline
RETRIES = 3
MAX_RETRY_AFTER = 60.0
MAX_REDIRECTS = 20  # httpx's default, spelled out: a longer chain is a permanent error
# Kept-alive connections would escape the deadline's cut-off (see deadline.py); our requests are
# minutes apart, so there is nothing to reuse anyway.
LIMITS = httpx.Limits(max_keepalive_connections=0)


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


@dataclass(frozen=True, slots=True)
class _Again:
    """An attempt that failed in a way worth another try."""

    reason: str
    wait: float | None = None  # what the server asked for (Retry-After), if it did


@dataclass
class HttpSource:
    """One URL. A fetch is at most RETRIES + 1 attempts; each attempt (connect, redirects, headers,
    body) ends by `deadline` seconds, and the whole fetch, waits between attempts included, by
    `budget` seconds. A body larger than `max_bytes` is refused."""

    name: str
    url: str
    client: httpx.Client | None = None
    archive: Path | None = None
    sleep: Any = field(default=clock.sleep)
    backoff: float = 1.0
    max_bytes: int = MAX_BYTES
    deadline: float = LimitsSettings().fetch_deadline
    budget: float = LimitsSettings().budget

    @classmethod
    def configured(cls, name: str, url: str, limits: LimitsSettings) -> HttpSource:
        return cls(name, url, max_bytes=limits.max_dump_bytes, deadline=limits.fetch_deadline, budget=limits.budget)

    def _client(self) -> httpx.Client:
        if self.client is None:
            self.client = httpx.Client(
                timeout=TIMEOUT,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                limits=LIMITS,
                event_hooks={"response": [self._check_redirect]},
            )
        return self.client

    def _check_redirect(self, response: httpx.Response) -> None:
        """Called by httpx on every response before it follows a redirect: only to http(s)."""
        location = response.headers.get("Location") if response.is_redirect else None
        scheme = urllib.parse.urlsplit(location).scheme.lower() if location else ""
        if scheme not in ("", "http", "https"):  # "": relative, on the same scheme
            raise SourceError(
                f"source {self.name}: {redact(self.url)} redirected to a {scheme}: URL; only http and https "
                "are followed: refused (not retried)"
            )

    def get(self, headers: dict[str, str], url: str | None = None) -> tuple[httpx.Headers, bytes] | None:
        """The response (None for 304), after retries; SourceError when it cannot be had. `url`:
        another address than the source's own (a source that asks for one day at a time)."""
        url = url or self.url
        budget_end = time.monotonic() + self.budget
        last = ""
        for attempt in range(RETRIES + 1):
            outcome = self._attempt(url, headers, min(time.monotonic() + self.deadline, budget_end), budget_end)
            if not isinstance(outcome, _Again):
                return outcome
            last = outcome.reason
            if attempt == RETRIES:
                break
            wait = min(outcome.wait if outcome.wait is not None else self.backoff * 2**attempt, MAX_RETRY_AFTER)
            if time.monotonic() + wait >= budget_end:
                raise SourceError(
                    f"source {self.name}: {redact(url)}: {outcome.reason} (after {attempt + 1} tries: waiting "
                    f"{wait:g} s for another would pass the fetch's budget of {self.budget:g} s)"
                )
            self.sleep(wait)
        raise SourceError(f"source {self.name}: {redact(url)}: {last} (after {RETRIES + 1} tries)")

    def _attempt(
        self, url: str, headers: dict[str, str], until: float, budget_end: float
    ) -> tuple[httpx.Headers, bytes] | _Again | None:
        """One GET, redirects followed, ended by `until` (a time.monotonic() value)."""
        left = until - time.monotonic()
        if left <= 0:
            raise self._late(url, until, budget_end)
        timeout = httpx.Timeout(
            connect=_within(TIMEOUT.connect, left),
            read=_within(TIMEOUT.read, left),
            write=_within(TIMEOUT.write, left),
            pool=_within(TIMEOUT.pool, left),
        )
        try:
            with (
                Cutoff(until) as cutoff,
                self._client().stream(
                    "GET", url, headers=headers, timeout=timeout, extensions={"trace": cutoff.trace}
                ) as response,
            ):
                if response.status_code == 304:
                    return None
                if response.status_code == 429 or response.status_code >= 500:
                    wait = retry_after(response.headers.get("Retry-After"), clock.now().timestamp())
                    return _Again(f"HTTP {response.status_code}", wait)
                if response.status_code >= 400:
                    raise SourceError(f"source {self.name}: {redact(url)} answered HTTP {response.status_code}")
                body = self._body(url, response, until, budget_end)
                if cutoff.fired:  # the cut may end a body without a length early: never take it as whole
                    raise self._late(url, until, budget_end)
                return response.headers, body
        except httpx.TimeoutException:
            if cutoff.fired or time.monotonic() >= until:
                raise self._late(url, until, budget_end) from None
            return _Again("timed out")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # a safety net behind _check_redirect
            raise SourceError(
                f"source {self.name}: {redact(url)} led to a URL that is not http(s) ({exc}): refused "
                "(not retried)"
            ) from None
        except httpx.TransportError as exc:
            if cutoff.fired:
                raise self._late(url, until, budget_end) from None
            return _Again(f"cannot connect: {exc.__class__.__name__}")
        except httpx.TooManyRedirects:  # a loop, or a chain too long: not worth retrying
            raise SourceError(
                f"source {self.name}: {redact(url)}: TooManyRedirects: more than {MAX_REDIRECTS} redirects"
            ) from None
        except httpx.HTTPError as exc:  # broken encodings...: not worth retrying
            raise SourceError(f"source {self.name}: {redact(url)}: {exc.__class__.__name__}") from None

    def _body(self, url: str, response: httpx.Response, until: float, budget_end: float) -> bytes:
        """The body, refused past `max_bytes` (up front when Content-Length says so) or `until`."""
        declared = response.headers.get("Content-Length", "")
        plain = response.headers.get("Content-Encoding", "identity").strip().lower() == "identity"
        if plain and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(url, f"{declared} bytes announced")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                raise self._too_large(url, "more arrived")
            if time.monotonic() >= until:
                raise self._late(url, until, budget_end)
        return bytes(body)

    def _too_large(self, url: str, seen: str) -> SourceError:
        return SourceError(
            f"source {self.name}: {redact(url)}: response larger than {self.max_bytes} bytes ({seen}): refused "
            "(raise [limits] max_dump_bytes in the config to accept bigger dumps)"
        )

    def _late(self, url: str, until: float, budget_end: float) -> SourceError:
        """Out of time: a server this slow is not tried again in this poll (the next poll will)."""
        if until >= budget_end:
            why = f"the fetch's budget of {self.budget:g} s ran out ([limits] fetch_budget)"
        else:
            why = f"took longer than the deadline of {self.deadline:g} s for one try ([limits] fetch_deadline)"
        return SourceError(f"source {self.name}: {redact(url)}: {why}: gave up")

    def fetch(self, memory: SourceMemory, now: dt.datetime) -> Fetched:
        """The listing, archived as a dump file first; nothing when it has not changed (304).
        A page that does not parse is this source's failure (its markup changed), not a refusal."""
        fetched = Fetched(failing_when_bad=True)
        headers = {}
        if memory.etag:
            headers["If-None-Match"] = memory.etag
        if memory.last_modified:
            headers["If-Modified-Since"] = memory.last_modified
        got = self.get(headers)
        if got is None:
            return fetched
        response_headers, body = got
        fetched.validators = {
            "etag": response_headers.get("ETag"),
            "last_modified": response_headers.get("Last-Modified"),
        }
        path = self.archive_body(body, response_headers.get("Content-Type", ""), now)
        raw = RawDump(str(path), body, now.timestamp())
        fetched.found.append(Found(path.name, content_hash(body), now.date(), raw, as_of=now.date()))
        return fetched

    def changed_since_read(self, found: Found) -> bool:
        return False  # a fetched body is archived once and never changes

    @property
    def archive_folder(self) -> Path:
        """Where fetched bodies are kept: `archive`, else the state directory's archive/<name>/."""
        return self.archive or state_dir() / "archive" / self.name

    def archive_body(self, body: bytes, content_type: str, now: dt.datetime, day: dt.date | None = None) -> Path:
        """Keep the body as a dump file, named by the fetch time and its hash; a body archived
        before (the same bytes) is not written again: its first copy is returned. `day`: the
        listing is that day's (a source fetched by day): the name starts with it, so that
        `backfill` dates the file by it, and then the fetch time orders the same day's files."""
        folder = self.archive_folder
        suffix = ".json" if "json" in content_type else ".html" if "html" in content_type else ".txt"
        digest = content_hash(body)
        stamp = f"{now:%Y-%m-%d_%H%M%S}" if day is None else f"{day.isoformat()}_fetched-{now:%Y%m%dT%H%M%SZ}"
        path = folder / f"{stamp}_{digest[:12]}{suffix}"
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


def _within(timeout: float | None, left: float) -> float:
    return left if timeout is None else min(timeout, left)


def _check_cli_url(url: str) -> None:
    """Refuse, as bad input, an http(s) URL given on the command line that names no server."""
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UsageError(f"{redact(url)}: not an http(s) URL a request can be made to: {exc}") from None
    reason = None
    if not parts.host:
        reason = "no host"
    elif parts.port is not None and not 0 < parts.port < 65536:
        reason = f"port {parts.port} is out of range 1-65535"
    if reason is not None:
        raise UsageError(f"{redact(url)}: not an http(s) URL a request can be made to: {reason}")


def fetch_dump(
    url: str, archive: bool = True, now: dt.datetime | None = None, limits: LimitsSettings | None = None
) -> RawDump:
    """One listing fetched for `parse` / `ingest URL`: same client rules as the daemon's sources.
    A URL no request can be made to (no host, a bad address or port) is a UsageError, unfetched."""
    now = now or clock.now()
    _check_cli_url(url)
    source = HttpSource.configured("cli", url, limits or LimitsSettings())
    try:
        fetched = source.get({})
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
