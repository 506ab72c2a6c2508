"""The web side: one-click unsubscribe from a real mailed digest, the archive, paper pages, Atom
feeds, and what makes it safe to expose. The app is driven through an ASGI client; one test
serves it with uvicorn as `paperdigest web` does, and the pages are opened in headless Chromium."""

from __future__ import annotations

import email.utils
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from starlette.testclient import TestClient

from paperdigest import subscribers
from paperdigest.config import load, validate
from paperdigest.errors import ConfigError
from paperdigest.mail.files import html_part
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from paperdigest.web.app import MAX_BODY, create_app
from tests.browser import chromium_or_skip, run_chromium
from tests.conftest import FIXTURES, ROOT, SEEDS

BASE = "https://digest.example.org"
SECRET = "a test secret that is long enough"
NOW = "2026-11-23T12:00:00+00:00"


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        '[topics.agents]\nkeywords = ["agent", "GUI"]\n[topics.robotics]\nkeywords = ["robot"]\n'
        f'[mail]\nfrom = "Digest <digest@example.org>"\ntransport = "file"\noutbox_dir = "{tmp_path / "out"}"\n'
        f'[web]\nbase_url = "{BASE}/"\n'
        '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["agents"]\ncron = "0 7 * * *"\n'
        '[[subscribers]]\nemail = "grace@example.org"\ntopics = ["robotics"]\ncron = "0 7 * * *"\n',
        encoding="utf-8",
    )
    return path


@dataclass
class Sent:
    config: Path
    db: str
    client: TestClient
    mails: dict[str, EmailMessage]


def mails(folder: Path) -> dict[str, EmailMessage]:
    found = {}
    for path in folder.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found[email.utils.parseaddr(str(message["To"]))[1]] = message
    return found


@pytest.fixture
def sent(cli: Any, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    monkeypatch.setenv("PAPERDIGEST_WEB_SECRET", SECRET)
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW)
    conf = write_config(tmp_path)
    for seed in ("003_00886173680504fb.txt", "004_d0e4e6143df38525.txt"):
        assert cli("--db", db_url, "ingest", str(SEEDS / seed), "--as-of", "2026-11-23").code == 0
    assert cli("--config", str(conf), "--db", db_url, "send").code == 0
    engine = open_engine(db_url)
    with TestClient(create_app(load(conf), engine), base_url=BASE) as client:
        yield Sent(conf, db_url, client, mails(tmp_path / "out"))
    engine.dispose()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link(message: EmailMessage, label: str) -> str:
    found = re.search(rf"^{label}: (\S+?)\r?$", text_of(message), re.MULTILINE)
    assert found, f"no {label!r} line in the mail"
    return found.group(1)


def html_link(message: EmailMessage, label: str) -> str:
    html = html_part(message.as_bytes())
    found = re.search(rf'<a href="([^"]+)"[^>]*>{label}</a>', (html or b"").decode("utf-8"))
    assert found, f"no {label!r} link in the mail's HTML"
    return found.group(1)


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/")
    return url[len(BASE) :]


def subscribed(sent: Sent) -> dict[str, bool]:
    engine = open_engine(sent.db)
    listed = {s.settings.email: s.subscribed for s in subscribers.subscriptions(engine, load(sent.config))}
    engine.dispose()
    return listed


# --- one-click unsubscribe ------------------------------------------------------------------


def test_the_mail_carries_one_click_unsubscribe(sent: Sent) -> None:
    message = sent.mails["ada@example.org"]
    header = str(message["List-Unsubscribe"])
    url = re.search(r"<(https://[^>]+)>", header)
    assert url and url.group(1).startswith(f"{BASE}/u/") and "<mailto:digest@example.org" in header
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert link(message, "Unsubscribe") == url.group(1)
    html = html_part(message.as_bytes())
    assert html is not None and b"View in your browser" in html and url.group(1).encode() in html


def test_a_get_changes_nothing_a_one_click_post_unsubscribes_only_that_subscriber(
    sent: Sent, cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = re.search(r"<(https://[^>]+)>", str(sent.mails["ada@example.org"]["List-Unsubscribe"]))
    assert url
    page = sent.client.get(path_of(url.group(1)))
    assert page.status_code == 200 and 'method="post"' in page.text and "ada@example.org" in page.text
    assert subscribed(sent) == {"ada@example.org": True, "grace@example.org": True}  # mail scanners GET links

    done = sent.client.post(
        path_of(url.group(1)),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert subscribed(sent) == {"ada@example.org": False, "grace@example.org": True}

    for outbox in (tmp_path / "out").iterdir():
        outbox.unlink()
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-24T12:00:00+00:00")
    assert cli("--db", sent.db, "ingest", str(SEEDS / "002_35bc1272005cc0d3.txt"), "--as-of", "2026-11-24").code == 0
    assert cli("--config", str(sent.config), "--db", sent.db, "send").code == 0
    assert "ada@example.org" not in mails(tmp_path / "out")


@pytest.mark.parametrize("how", ["altered", "another purpose", "junk"])
def test_a_bad_token_changes_nothing(sent: Sent, how: str) -> None:
    good = path_of(link(sent.mails["ada@example.org"], "Unsubscribe"))
    if how == "altered":
        path = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    elif how == "another purpose":
        path = "/u/" + path_of(link(sent.mails["ada@example.org"], "Atom feed"))[3:].removesuffix(".atom")
    else:
        path = "/u/<script>alert(1)</script>"
    answer = sent.client.post(path, content=b"List-Unsubscribe=One-Click")
    assert answer.status_code in (400, 404)
    assert "<script>" not in answer.text
    assert subscribed(sent) == {"ada@example.org": True, "grace@example.org": True}


def test_a_post_without_one_click_is_refused(sent: Sent) -> None:
    path = path_of(link(sent.mails["ada@example.org"], "Unsubscribe"))
    assert sent.client.post(path, content=b"something=else").status_code == 400
    assert subscribed(sent)["ada@example.org"] is True


# --- the archive, paper pages, feeds ------------------------------------------------------------


def test_view_in_the_browser_serves_the_digest_as_mailed(sent: Sent) -> None:
    message = sent.mails["grace@example.org"]
    page = sent.client.get(path_of(link(message, "View in your browser")))
    assert page.status_code == 200
    assert page.content == html_part(message.as_bytes())


def test_the_subscriber_page_lists_only_its_own_digests(sent: Sent) -> None:
    archive = html_link(sent.mails["ada@example.org"], "Past digests")
    index = sent.client.get(path_of(archive))
    assert index.status_code == 200 and "ada@example.org" in index.text and "grace@example.org" not in index.text
    view = link(sent.mails["ada@example.org"], "View in your browser")
    assert view in index.text  # the digest just mailed is listed
    grace = path_of(html_link(sent.mails["grace@example.org"], "Past digests"))
    assert grace != path_of(archive) and view not in sent.client.get(grace).text
    feed = path_of(link(sent.mails["ada@example.org"], "Atom feed"))
    as_subscriber = feed.replace("/f/", "/s/").removesuffix(".atom")
    assert sent.client.get(as_subscriber).status_code == 400  # a feed token is no subscriber token


def test_the_subscriber_feed_is_valid_atom_with_the_papers_sent_and_conditional_get(sent: Sent) -> None:
    path = path_of(link(sent.mails["ada@example.org"], "Atom feed"))
    answer = sent.client.get(path)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(answer.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    subject = str(sent.mails["ada@example.org"]["Subject"])
    count = int(re.search(r"(\d+) new papers?", subject).group(1))  # type: ignore[union-attr]
    assert len(parsed.entries) == count
    ids = [entry.id for entry in parsed.entries]
    assert len(set(ids)) == len(ids) and all(i.startswith("tag:digest.example.org,2026:paper:") for i in ids)
    again = sent.client.get(path)
    assert [e.id for e in feedparser.parse(again.content).entries] == ids  # stable
    cached = sent.client.get(path, headers={"If-None-Match": answer.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""


def test_a_topic_feed_is_public_and_valid_atom(sent: Sent) -> None:
    answer = sent.client.get("/topics/agents.atom")
    parsed = feedparser.parse(answer.content)
    assert answer.status_code == 200 and not parsed.bozo and parsed.entries
    assert parsed.feed.author == "Paper Digest"  # RFC 4287: the feed names an author
    assert sent.client.get("/topics/nope.atom").status_code == 404


def test_a_topic_feed_is_the_same_until_its_papers_change_so_readers_get_304(
    sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sent.client.get("/topics/agents.atom")
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-23T12:05:00+00:00")  # a later poll, the same papers
    again = sent.client.get("/topics/agents.atom")
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):  # weak (a proxy's gzip), a list, any
        assert sent.client.get("/topics/agents.atom", headers={"If-None-Match": header}).status_code == 304
    assert sent.client.get("/topics/agents.atom", headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_text_only_digest_is_viewed_as_text(cli: Any, tmp_path: Path, db_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("PAPERDIGEST_WEB_SECRET", SECRET)
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW)
    conf = write_config(tmp_path)
    conf.write_text(conf.read_text().replace('cron = "0 7 * * *"\n', 'cron = "0 7 * * *"\nformat = "text"\n', 1))
    assert cli("--db", db_url, "ingest", str(SEEDS / "004_d0e4e6143df38525.txt"), "--as-of", "2026-11-23").code == 0
    assert cli("--config", str(conf), "--db", db_url, "send").code == 0
    message = mails(tmp_path / "out")["ada@example.org"]
    assert html_part(message.as_bytes()) is None  # text only
    engine = open_engine(db_url)
    with TestClient(create_app(load(conf), engine), base_url=BASE) as client:
        page = client.get(path_of(link(message, "View in your browser")))
    engine.dispose()
    assert page.status_code == 200 and "<pre" in page.text
    first_title = text_of(message).split("\n1. ", 1)[1].split("\n", 1)[0].strip()
    assert first_title and first_title.replace("&", "&amp;") in page.text


def test_a_paper_page_shows_its_upvotes_over_time(sent: Sent, cli: Any, tmp_path: Path) -> None:
    engine = open_engine(sent.db)
    with engine.connect() as conn:
        best = queries.top_papers(conn, 1)[0]  # the most upvoted: its counts are known
    engine.dispose()
    assert best.upvotes is not None
    one = sent.client.get(f"/p/{best.id}")
    assert one.status_code == 200 and "<svg" not in one.text and f"Nov 23: {best.upvotes}" in one.text
    later = tmp_path / "2026-11-24_again.txt"  # seen again the next day, with more upvotes
    votes = best.upvotes + 7
    later.write_text(f"Daily Papers\n\nNov 24\n\n{best.title}\n\nAgain.\n\n  • 3 authors\n·\nNov 1 {votes}\n")
    assert cli("--db", sent.db, "ingest", str(later)).code == 0
    page = sent.client.get(f"/p/{best.id}")
    assert page.status_code == 200 and "<svg" in page.text and "polyline" in page.text
    assert f"Nov 24: {best.upvotes + 7}" in page.text
    assert sent.client.get("/p/999999").status_code == 404
    assert sent.client.get("/p/x").status_code == 404
    assert sent.client.get("/p/" + "9" * 40).status_code == 404  # no overflow on either engine


API = FIXTURES / "hf_daily_papers_2023-05.json"


@pytest.fixture
def api_client(cli: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The web side over a store holding the real daily-papers API sample (topic "r": robots)."""
    monkeypatch.setenv("PAPERDIGEST_WEB_SECRET", SECRET)
    assert cli("--db", db_url, "ingest", str(API), "--as-of", "2023-05-31").code == 0
    engine = open_engine(db_url)
    settings = validate({"web": {"base_url": BASE}, "topics": {"r": {"keywords": ["robot"]}}}, "t")
    with TestClient(create_app(settings, engine), base_url=BASE) as client:
        yield client
    engine.dispose()


def test_a_paper_page_by_arxiv_id_shows_what_the_api_gives(api_client: TestClient) -> None:
    page = api_client.get("/p/2305.14314")  # QLoRA, by its arXiv id
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert "Tim Dettmers, Artidoro Pagnoni, Ari Holtzman et al." in text
    assert "AI summary:" in text and 'href="https://arxiv.org/pdf/2305.14314"' in text
    assert re.search(r'href="https://github.com/[^"]+">Code</a> ★ [\d,]+', text), "no code link with its stars"
    assert "<svg" not in text and "No upvote counts seen yet" not in text  # one count: said, not drawn


def test_a_feed_entry_names_its_papers_authors(api_client: TestClient) -> None:
    parsed = feedparser.parse(api_client.get("/topics/r.atom").content)
    raw = json.loads(API.read_text(encoding="utf-8"))
    authors = {" ".join(item["paper"]["title"].split()): [a["name"] for a in item["paper"]["authors"]] for item in raw}
    assert not parsed.bozo and len(parsed.entries) >= 3
    for entry in parsed.entries:
        names = [author["name"] for author in entry.authors]
        assert names == authors[" ".join(entry.title.split())][:10], entry.title  # RFC 4287 atom:author, at most ten



def test_a_feed_entry_says_when_it_names_only_the_first_ten_authors(
    cli: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PaLM 2 has 128 authors and StarCoder 67: the entry names the first ten, then says how many
    more there are (it used to stop at ten as if that were all)."""
    monkeypatch.setenv("PAPERDIGEST_WEB_SECRET", SECRET)
    assert cli("--db", db_url, "ingest", str(API), "--as-of", "2023-05-31").code == 0
    engine = open_engine(db_url)
    settings = validate({"web": {"base_url": BASE}, "topics": {"big": {"keywords": ["PaLM", "StarCoder"]}}}, "t")
    with TestClient(create_app(settings, engine), base_url=BASE) as client:
        parsed = feedparser.parse(client.get("/topics/big.atom").content)
    engine.dispose()
    raw = json.loads(API.read_text(encoding="utf-8"))
    authors = {" ".join(item["paper"]["title"].split()): [a["name"] for a in item["paper"]["authors"]] for item in raw}
    by_title = {" ".join(entry.title.split()): [a["name"] for a in entry.authors] for entry in parsed.entries}
    palm = authors["PaLM 2 Technical Report"]
    assert by_title["PaLM 2 Technical Report"] == [*palm[:10], f"et al. ({len(palm) - 10} more)"]
    for title, names in by_title.items():
        listed = authors[title]
        assert names == listed[:10] + ([f"et al. ({len(listed) - 10} more)"] if len(listed) > 10 else []), title

# --- safe to expose --------------------------------------------------------------------------------


def test_security_headers_and_limits(sent: Sent) -> None:
    for path in ("/", "/topics/agents.atom", "/u/bad", "/nowhere"):
        headers = sent.client.get(path).headers
        assert "script-src" not in headers["content-security-policy"]  # default-src 'none': no script at all
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    big = sent.client.post(path_of(link(sent.mails["ada@example.org"], "Unsubscribe")), content=b"x" * (MAX_BODY + 1))
    assert big.status_code == 413
    assert subscribed(sent)["ada@example.org"] is True
    assert sent.client.post("/topics/agents.atom").status_code == 405  # changes are POSTs on /u/ only


def test_a_hostile_title_is_text_on_the_paper_page(cli: Any, tmp_path: Path, db_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("PAPERDIGEST_WEB_SECRET", SECRET)
    hostile = tmp_path / "2026-11-23_hostile.txt"
    hostile.write_text(
        "Daily Papers\n\nNov 23\n\n<script>alert(1)</script> robot\n\nAn abstract <b>bold</b>.\n\n"
        "  • 3 authors\n·\nNov 1 5\n",
        encoding="utf-8",
    )
    assert cli("--db", db_url, "ingest", str(hostile)).code == 0
    engine = open_engine(db_url)
    settings = validate({"web": {"base_url": BASE}, "topics": {"r": {"keywords": ["robot"]}}}, "t")
    with TestClient(create_app(settings, engine), base_url=BASE) as client:
        page = client.get("/p/1")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt; robot" in page.text
    assert "<b>bold</b>" not in page.text


@pytest.mark.parametrize("base", ["ftp://digest.example.org", "javascript:alert(1)", "digest.example.org", ""])
def test_a_base_url_that_is_not_http_is_refused(base: str) -> None:
    with pytest.raises(ConfigError, match=r"web\.base_url"):
        validate({"web": {"base_url": base}}, "c.toml")


def test_web_needs_a_web_section(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[topics.a]\nkeywords = ["x"]\n', encoding="utf-8")
    result = cli("--config", str(path), "--db", f"sqlite:///{tmp_path / 'x.db'}", "web")
    assert result.code == 2 and "[web]" in result.err


# --- served for real, and seen in a browser ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refused(conf: Path, db: str, env: dict[str, str], code: int, reason: str) -> None:
    """`paperdigest web` exits `code` with one line of error, never a 'serving' line first."""
    done = subprocess.run(
        [sys.executable, "-m", "paperdigest", "--config", str(conf), "--db", db, "web"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().splitlines() == [f"paperdigest: error: {reason}"]


def test_paperdigest_web_serves_the_pages(sent: Sent, tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "served.toml"
    listen = f'base_url = "{BASE}/"\nlisten = "127.0.0.1:{port}"'
    served = sent.config.read_text().replace(f'base_url = "{BASE}/"', listen)
    conf.write_text(served)
    env = dict(os.environ, PAPERDIGEST_WEB_SECRET=SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperdigest", "--config", str(conf), "--db", sent.db, "web"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/topics/agents.atom", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "paperdigest web did not start"
                time.sleep(0.2)
        assert answer.status_code == 200 and feedparser.parse(answer.content).entries
        unsubscribe = path_of(link(sent.mails["grace@example.org"], "Unsubscribe"))
        done = httpx.post(f"http://127.0.0.1:{port}{unsubscribe}", content=b"List-Unsubscribe=One-Click", timeout=5)
        assert done.status_code == 200 and subscribed(sent)["grace@example.org"] is False
        ada = path_of(link(sent.mails["ada@example.org"], "Unsubscribe"))
        chunked = httpx.post(f"http://127.0.0.1:{port}{ada}", content=iter([b"x" * MAX_BODY, b"x" * 10]), timeout=5)
        assert chunked.status_code == 413 and subscribed(sent)["ada@example.org"] is True  # no length, still refused
        refused(conf, sent.db, env, 1, f"{conf}: web.listen: cannot listen on 127.0.0.1:{port}: Address already in use")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.stderr is not None
    assert f"serving {BASE} on http://127.0.0.1:{port}" in proc.stderr.read().decode()


def test_web_with_an_unreadable_secret_file_says_so_and_never_says_serving(sent: Sent, tmp_path: Path) -> None:
    conf = tmp_path / "secretless.toml"
    missing = tmp_path / "no-such-secret"
    listen = f'base_url = "{BASE}/"\nlisten = "127.0.0.1:{free_port()}"\nsecret_file = "{missing}"'
    conf.write_text(sent.config.read_text().replace(f'base_url = "{BASE}/"', listen))
    env = {k: v for k, v in os.environ.items() if k != "PAPERDIGEST_WEB_SECRET"}
    refused(conf, sent.db, env, 2, f"web.secret_file: cannot read {missing}: No such file or directory")


def test_the_pages_in_a_real_browser(sent: Sent, tmp_path: Path) -> None:
    """Screenshots at 1200 and 390 px, kept as artefacts in $PAPERDIGEST_ARTIFACTS/web (or the
    test's folder)."""
    binary = chromium_or_skip()
    folder = Path(os.environ.get("PAPERDIGEST_ARTIFACTS") or tmp_path) / "web"
    folder.mkdir(parents=True, exist_ok=True)
    views = {
        "past-digests": sent.client.get(path_of(html_link(sent.mails["ada@example.org"], "Past digests"))).text,
        "unsubscribe": sent.client.get(path_of(link(sent.mails["ada@example.org"], "Unsubscribe"))).text,
        "digest": sent.client.get(path_of(link(sent.mails["ada@example.org"], "View in your browser"))).text,
    }
    entries = feedparser.parse(sent.client.get("/topics/agents.atom").content).entries
    views["paper"] = sent.client.get(f"/p/{entries[0].id.rsplit(':', 1)[1]}").text
    for name, html in views.items():
        page = folder / f"{name}.html"
        page.write_text(html, encoding="utf-8")
        for width in (1200, 390):
            shot = folder / f"{name}-{width}.png"
            run_chromium(binary, page, tmp_path / f"profile-{name}-{width}", f"--screenshot={shot}", width=width)
            assert shot.exists() and shot.stat().st_size > 2000, f"no screenshot of {name} at {width} px"
