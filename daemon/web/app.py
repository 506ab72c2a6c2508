"""The web side, an ASGI app (Starlette) on the same store as the daemon.

    GET  /u/TOKEN          a page asking to confirm (mail scanners fetch links: a GET changes nothing)
    POST /u/TOKEN          unsubscribe at once: RFC 8058's List-Unsubscribe=One-Click, or the page's button
    GET  /d/TOKEN          a sent digest, exactly as mailed (its HTML part)
    GET  /s/TOKEN          the subscriber's recent digests
    GET  /f/TOKEN.atom     the subscriber's feed: an entry per paper, as ranked in its digests
    GET  /topics/NAME.atom a public feed per topic
    GET  /p/ID             a paper: its fields, links, and its upvotes over time

A token is signed for one purpose and names one subscriber; anything else is 400 (a token
that is not ours) or 404 (nothing there), and changes nothing. Every response carries
security headers; a request body is at most MAX_BODY bytes.
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.parser
import email.policy
import hashlib
import json
import re
import urllib.parse

from feedgen.feed import FeedGenerator
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperdigest import clock, subscribers
from paperdigest.config import Settings
from paperdigest.digest import views
from paperdigest.digest.views import paper_url
from paperdigest.mail.files import html_part, text_part
from paperdigest.model import Paper
from paperdigest.score import rank
from paperdigest.store import queries
from paperdigest.web import pages
from paperdigest.web.tokens import Tokens, load_secret

MAX_BODY = 4096  # bytes: the one-click POST is 26
FEED_DIGESTS = 30  # a subscriber's feed: its last 30 digests
TOPIC_DAYS = 14  # a topic's feed: the papers brought in over the last two weeks...
TOPIC_ENTRIES = 50  # ...its best 50
FEED_AUTHORS = 10  # an entry names at most the first ten authors of its paper
# What XML 1.0 cannot carry (its Char production): C0 controls but tab, LF and CR, lone
# surrogates, U+FFFE/U+FFFF. A paper's text can hold them (the store keeps what a listing said);
# lxml refuses them, so one such title made every feed holding the paper answer 500.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class Web:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        assert settings.web is not None
        self.settings = settings
        self.engine = engine
        self.base = settings.web.base_url
        self.tokens = Tokens(load_secret(settings))
        self.host = urllib.parse.urlsplit(self.base).hostname or "paperdigest"

    # --- unsubscribe -----------------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        email = self.tokens.read("unsubscribe", request.path_params["token"])
        if email is None:
            return _message("Not a valid link", "This unsubscribe link is not one of ours.", 400)
        if request.method in ("GET", "HEAD"):  # HEAD (link checkers): what GET says, no change
            action = f"/u/{request.path_params['token']}"
            return HTMLResponse(pages.page("unsubscribe.html", title="Unsubscribe", email=email, action=action))
        if not _one_click(request.headers.get("content-type", ""), await request.body()):
            return _message("Not unsubscribed", "Send List-Unsubscribe=One-Click to unsubscribe.", 400)
        subscribers.unsubscribe(self.engine, email)
        return _message("Unsubscribed", f"{email} gets no more digests.", 200)

    # --- the archive ---------------------------------------------------------------------------

    async def digest(self, request: Request) -> Response:
        found = self.tokens.read_digest(request.path_params["token"])
        if found is None:
            return _message("Not a valid link", "This link is not one of ours.", 400)
        email, period = found
        with self.engine.connect() as conn:
            message = queries.delivered_message(conn, email, period)
        if message is None:
            return _message("Not found", "There is no such digest.", 404)
        html = html_part(message)
        if html is None:  # mailed as text only: shown as such
            text = text_part(message) or ""
            return HTMLResponse(pages.page("text_digest.html", title="Your digest", text=text))
        return HTMLResponse(html.decode("utf-8"))

    async def subscriber(self, request: Request) -> Response:
        email = self.tokens.read("subscriber", request.path_params["token"])
        if email is None:
            return _message("Not a valid link", "This link is not one of ours.", 400)
        with self.engine.connect() as conn:
            rows = queries.sent_digests(conn, email, FEED_DIGESTS)
        digests = [
            {
                "url": f"{self.base}/d/{self.tokens.digest(email, clock.as_utc(row.period) or clock.now())}",
                "subject": row.subject,
                "when": f"{clock.as_utc(row.sent_at) or clock.as_utc(row.period):%Y-%m-%d %H:%MZ}",
            }
            for row in rows
        ]
        return HTMLResponse(
            pages.page(
                "subscriber.html",
                title="Your digests",
                email=email,
                digests=digests,
                feed=f"{self.base}/f/{self.tokens.make('feed', email)}.atom",
                unsubscribe=f"{self.base}/u/{self.tokens.make('unsubscribe', email)}",
            )
        )

    async def paper(self, request: Request) -> Response:
        raw = request.path_params["paper_id"]
        if not raw.isprintable():  # a NUL or other control names no paper (PostgreSQL refuses NUL in text: 500)
            return _message("Not found", "There is no such paper.", 404)
        with self.engine.connect() as conn:  # an arXiv id (2305.14314), or the store's own id
            found = queries.paper_by_arxiv_id(conn, raw)
            if found is None and raw.isascii() and raw.isdigit() and len(raw) < 19:  # not '²' or '١'
                found = queries.papers_by_ids(conn, [int(raw)]).get(int(raw))
            history = queries.upvote_history(conn, found.id) if found else []
        if found is None:
            return _message("Not found", "There is no such paper.", 404)
        line = pages.sparkline(history)
        text = ", ".join(f"{day:%b %-d}: {votes}" for day, votes in history[-10:])
        return HTMLResponse(
            pages.page(
                "paper.html",
                title=found.title,
                paper=found,
                byline=_byline(found),
                links=_paper_links(found),
                sparkline=line,
                history_text=text,
            )
        )

    # --- feeds -----------------------------------------------------------------------------------

    async def subscriber_feed(self, request: Request) -> Response:
        email = self.tokens.read("feed", request.path_params["token"])
        if email is None:
            return _message("Not a valid link", "This feed link is not one of ours.", 400)
        with self.engine.connect() as conn:
            rows = queries.sent_digests(conn, email, FEED_DIGESTS)
            ids = [int(pid) for row in rows for pid in json.loads(row.papers)]
            papers = queries.papers_by_ids(conn, ids)
        entries = []
        for row in rows:  # newest digest first, each in its own ranking
            when = clock.as_utc(row.sent_at) or clock.as_utc(row.period) or clock.now()
            entries += [(papers[int(pid)], when) for pid in json.loads(row.papers) if int(pid) in papers]
        self_url = f"{self.base}/f/{request.path_params['token']}.atom"
        return self._feed(request, "Paper digest", self_url, entries)

    async def topic_feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        topic = self.settings.topics.get(name)
        if topic is None:
            return _message("Not found", "There is no such topic.", 404)
        now = clock.now()
        with self.engine.connect() as conn:
            pool = queries.recent_papers(conn, now - dt.timedelta(days=TOPIC_DAYS))
        ranked = rank(pool, {name: topic}, self.settings.scoring)[:TOPIC_ENTRIES]
        # Dated by when each paper was first seen, not by the request: the same papers give the
        # same feed, so a reader's If-None-Match gets 304.
        entries = [(s.paper, dt.datetime.combine(s.paper.first_seen, dt.time(), dt.UTC)) for s in ranked]
        return self._feed(request, f"Paper digest: {name}", f"{self.base}/topics/{name}.atom", entries)

    def _feed(self, request: Request, title: str, self_url: str, entries: list[tuple[Paper, dt.datetime]]) -> Response:
        feed = FeedGenerator()
        feed.id(self_url)
        feed.title(_xml_text(title))
        feed.link(href=self_url, rel="self")
        feed.link(href=self.base, rel="alternate")
        feed.author({"name": "Paper Digest"})  # RFC 4287: a feed names an author when its entries do not
        feed.updated(max((when for _, when in entries), default=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
        for paper, when in reversed(entries):  # feedgen lists the last added first
            entry = feed.add_entry()
            entry.id(f"tag:{self.host},2026:paper:{paper.id}")  # stable: one id per paper, wherever it shows
            entry.title(_xml_text(paper.title))
            entry.link(href=paper_url(paper.title, paper.arxiv_id))
            for name in _entry_authors(paper):
                entry.author({"name": _xml_text(name)})
            entry.updated(when)
            if paper.abstract:
                entry.summary(_xml_text(paper.abstract))
        body = feed.atom_str(pretty=True)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/atom+xml", headers={"ETag": etag})

    async def home(self, request: Request) -> Response:
        return HTMLResponse(pages.page("home.html", title="Paper Digest"))


def _one_click(content_type: str, body: bytes) -> bool:
    """Whether a POST's body is RFC 8058's `List-Unsubscribe=One-Click`: as multipart/form-data
    (which RFC 8058 asks mail clients for) or urlencoded (which most send; any other type is read
    as that too). The body is at most MAX_BODY bytes (see `guarded`)."""
    if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
        head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            return False
        fields: dict[str, list[bytes]] = {}
        for part in message.get_payload():
            assert isinstance(part, email.message.Message)
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.setdefault(name, []).append(payload)
        return fields.get("List-Unsubscribe") == [b"One-Click"]
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return form.get("List-Unsubscribe") == ["One-Click"]


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison for If-None-Match: any of a list, "W/" ignored, or "*"."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _xml_text(text: str) -> str:
    """`text` without the characters XML cannot hold (NOT_XML); the rest is escaped by feedgen."""
    return NOT_XML.sub("", text)


def _entry_authors(paper: Paper) -> list[str]:
    """An entry's own authors (RFC 4287 atom:author): the paper's first names, then "et al. (N
    more)" when there are more (as the digest says "et al."), else its org.

    With neither, the entry has none and the feed's author stands for it."""
    if paper.author_names:
        more = len(paper.author_names) - FEED_AUTHORS
        return [*paper.author_names[:FEED_AUTHORS], *([f"et al. ({more} more)"] if more > 0 else [])]
    return [paper.org] if paper.org else []


def _message(title: str, text: str, status: int) -> HTMLResponse:
    return HTMLResponse(pages.page("message.html", title=title, text=text), status_code=status)


def _byline(paper: Paper) -> str:
    parts = [views.byline(paper)]
    if paper.published:
        parts.append(f"{paper.published:%b %-d, %Y}")
    if paper.comments:
        parts.append(f"{paper.comments} comment{'s' if paper.comments != 1 else ''}")
    parts.append(f"first seen {paper.first_seen:%b %-d, %Y}")
    return " · ".join(p for p in parts if p)


def _paper_links(paper: Paper) -> list[tuple[str, str, str]]:
    """(label, URL, note) of the paper's page (or a search) and its links, as the digest gives them."""
    first = ("Paper page" if paper.arxiv_id else "Search arXiv", paper_url(paper.title, paper.arxiv_id), "")
    return [first, *((link.label, link.url, link.note) for link in views.links(paper))]


def guarded(app: ASGIApp) -> ASGIApp:
    """Security headers on every response; a request body over MAX_BODY is refused (413)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await _refuse(send, 413, b"request body too large")
            return
        # The whole body is read here, at most MAX_BODY bytes, whether it comes with a length or
        # chunked: the app then sees one message, and an oversized one never reaches it.
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > MAX_BODY:
                await _refuse(send, 413, b"request body too large")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def buffered() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(parts), "more_body": False}
            return await receive()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                caching = _cache_control(scope.get("path", ""))
                if caching is not None:
                    extra.append((b"cache-control", caching.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await app(scope, buffered, with_headers)

    return middleware


def _cache_control(path: str) -> str | None:
    """A page named by a subscriber's token is that subscriber's: never kept by a shared cache (a
    proxy or CDN in front of base_url); the unsubscribe page is not kept at all, and a feed may be
    kept by its reader, who asks again with If-None-Match. Public pages say nothing."""
    if path.startswith("/u/"):
        return "private, no-store"
    if path.startswith(("/d/", "/s/", "/f/")):
        return "private, no-cache"
    return None


async def _refuse(send: Send, status: int, body: bytes) -> None:
    secure = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    headers = [(b"content-type", b"text/plain"), *secure]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings, engine: Engine) -> ASGIApp:
    web = Web(settings, engine)
    app = Starlette(
        routes=[
            Route("/", web.home),
            Route("/u/{token}", web.unsubscribe, methods=["GET", "POST"]),
            Route("/d/{token}", web.digest),
            Route("/s/{token}", web.subscriber),
            Route("/f/{token}.atom", web.subscriber_feed),
            Route("/topics/{name}.atom", web.topic_feed),
            Route("/p/{paper_id}", web.paper),
        ]
    )
    return guarded(app)
