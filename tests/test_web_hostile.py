"""The web side against what a new user's trial threw at it: control characters in a paper's
title (an Atom feed is XML, which cannot carry them), HEAD on an unsubscribe link, RFC 8058's
one-click POST sent as multipart/form-data, odd paper ids, and where `paperdigest web` says it
cannot listen. Each ran against a real store (SQLite and PostgreSQL) made by the real commands."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import feedparser
import pytest
from starlette.testclient import TestClient

from paperdigest import subscribers
from paperdigest.config import load
from paperdigest.store.engine import open_engine
from paperdigest.web.app import create_app
from tests.conftest import FIXTURES, ROOT

BASE = "https://digest.example.org"
SECRET = "a test secret that is long enough"
NOW = "2026-11-23T12:00:00+00:00"
API = FIXTURES / "hf_daily_papers_2023-05.json"
HOSTILE_TITLE = "Ctl \x01\x08 <script>x</script> robot"
HOSTILE_SUMMARY = "Form feed \x0c and bell \x07 in a robot abstract </summary><evil/>"


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        '[topics.robots]\nkeywords = ["robot"]\n'
        f'[mail]\nfrom = "Digest <digest@example.org>"\ntransport = "file"\noutbox_dir = "{tmp_path / "out"}"\n'
        f'[web]\nbase_url = "{BASE}/"\n{extra}'
        '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["robots"]\ncron = "0 7 * * *"\ntimezone = "UTC"\n',
        encoding="utf-8",
    )
    return path


def hostile_dump(tmp_path: Path) -> Path:
    """Two real items of the daily-papers sample, one given control characters in its title and
    abstract (JSON carries them escaped; the store keeps them)."""
    items = json.loads(API.read_text(encoding="utf-8"))[:2]
    items[0]["paper"]["title"] = HOSTILE_TITLE
    items[0]["paper"]["summary"] = HOSTILE_SUMMARY
    items[0]["paper"]["authors"][0]["name"] = "Bell\x07 Author"
    items[1]["paper"]["title"] = "A calm robot paper"
    path = tmp_path / "2026-11-23_hostile.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


Served = tuple[TestClient, Path]  # the app on the store, and the outbox folder of its mail


@pytest.fixture
def hostile(cli: Any, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("PAPERDIGEST_WEB_SECRET", SECRET)
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW)
    conf = write_config(tmp_path)
    assert cli("--db", db_url, "ingest", str(hostile_dump(tmp_path))).code == 0
    assert cli("--config", str(conf), "--db", db_url, "send").code == 0
    engine = open_engine(db_url)
    with engine.connect() as conn:  # the store kept the control characters: the feed must cope
        titles = [row[0] for row in conn.exec_driver_sql("SELECT title FROM paper")]
    assert HOSTILE_TITLE in titles
    with TestClient(create_app(load(conf), engine), base_url=BASE) as client:
        yield client, tmp_path / "out"
    engine.dispose()


def mailed_link(outbox: Path, label: str) -> str:
    (eml,) = outbox.glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    text = str(part.get_content())
    found = re.search(rf"^{label}: {re.escape(BASE)}(\S+?)\r?$", text, re.MULTILINE)
    assert found, f"no {label!r} line in the mail"
    return found.group(1)


def test_a_title_with_control_characters_does_not_break_the_feeds(hostile: Served) -> None:
    """XML 1.0 has no control characters but tab, CR and LF: one such title used to make every
    feed holding that paper answer 500 (lxml refuses them), for every reader of the topic."""
    client, outbox = hostile
    for path in ("/topics/robots.atom", mailed_link(outbox, "Atom feed")):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:200])
        parsed = feedparser.parse(answer.content)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        titles = [" ".join(entry.title.split()) for entry in parsed.entries]
        assert "Ctl <script>x</script> robot" in titles and "A calm robot paper" in titles, titles
        assert b"<evil/>" not in answer.content and b"<script>" not in answer.content  # still escaped
        summaries = [" ".join(entry.summary.split()) for entry in parsed.entries]
        assert "Form feed and bell in a robot abstract </summary><evil/>" in summaries, summaries
        authors = [a["name"] for entry in parsed.entries for a in entry.get("authors", [])]
        assert "Bell Author" in authors


def test_head_on_an_unsubscribe_link_answers_like_get_and_changes_nothing(
    hostile: Served, db_url: str, tmp_path: Path
) -> None:
    """A HEAD (link checkers, some mail scanners) was taken for a POST without One-Click: 400."""
    client, outbox = hostile
    path = mailed_link(outbox, "Unsubscribe")
    head = client.head(path)
    get = client.get(path)
    assert head.status_code == get.status_code == 200
    assert head.headers["content-type"] == get.headers["content-type"] and head.content == b""
    engine = open_engine(db_url)
    listed = {s.settings.email: s.subscribed for s in subscribers.subscriptions(engine, load(tmp_path / "c.toml"))}
    engine.dispose()
    assert listed == {"ada@example.org": True}


def test_a_one_click_post_as_multipart_form_data_unsubscribes(
    hostile: Served, db_url: str, tmp_path: Path
) -> None:
    """RFC 8058 lets a mail client send its POST as multipart/form-data (it prefers it) or
    urlencoded: both unsubscribe; a multipart body without the pair does not."""
    client, outbox = hostile
    path = mailed_link(outbox, "Unsubscribe")

    def listed() -> dict[str, bool]:
        engine = open_engine(db_url)
        found = {s.settings.email: s.subscribed for s in subscribers.subscriptions(engine, load(tmp_path / "c.toml"))}
        engine.dispose()
        return found

    other = client.post(path, files={"Something": (None, "else")})
    assert other.status_code == 400 and listed() == {"ada@example.org": True}
    junk = client.post(path, content=b"--x\r\nnot a part", headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert junk.status_code == 400 and listed() == {"ada@example.org": True}
    done = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert done.request.headers["content-type"].startswith("multipart/form-data")
    assert done.status_code == 200 and listed() == {"ada@example.org": False}


@pytest.mark.parametrize("raw", ["%C2%B2", "%D9%A1", "1%E2%82%80", "-1", "%00"])
def test_a_paper_id_of_odd_digits_is_not_found_not_a_server_error(hostile: Served, raw: str) -> None:
    """'²' passed str.isdigit() and broke int() (500, a traceback); '١' (Arabic-Indic one) showed paper 1;
    a NUL reached PostgreSQL, which refuses it in text (500)."""
    client, _ = hostile
    answer = client.get(f"/p/{raw}")
    assert answer.status_code == 404, answer.text[:200]


def test_a_listen_address_in_use_names_the_config_file(cli: Any, tmp_path: Path, db_url: str) -> None:
    """Every other config error names the file; this one said only 'web.listen: ...'."""
    assert cli("--db", db_url, "db", "upgrade").code == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        conf = write_config(tmp_path, f'listen = "127.0.0.1:{port}"\n')
        done = subprocess.run(
            [sys.executable, "-m", "paperdigest", "--config", str(conf), "--db", db_url, "web"],
            cwd=ROOT, env=dict(os.environ, PAPERDIGEST_WEB_SECRET=SECRET),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"paperdigest: error: {conf}: web.listen: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_web_on_a_mistyped_store_path_creates_nothing(tmp_path: Path) -> None:
    """As `status` and `papers` do: a path someone gave must name a store. `web` used to make an
    empty one there and serve 404s for every link mailed."""
    conf = write_config(tmp_path, f'listen = "127.0.0.1:{free_port()}"\n')
    typo = tmp_path / "papres.db"
    done = subprocess.run(
        [sys.executable, "-m", "paperdigest", "--config", str(conf), "--db", f"sqlite:///{typo}", "web"],
        cwd=ROOT, env=dict(os.environ, PAPERDIGEST_WEB_SECRET=SECRET),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"paperdigest: error: no store at {typo} (no such file; nothing created)"), line
    assert not list(tmp_path.glob("papres.db*"))


def test_a_subscribers_pages_are_not_kept_by_shared_caches(hostile: Served) -> None:
    """The pages a token names (a digest, the archive, the feed, unsubscribe) are one subscriber's:
    a proxy or CDN in front of base_url must not keep them for others; they had no Cache-Control."""
    client, outbox = hostile
    unsubscribe = mailed_link(outbox, "Unsubscribe")
    for path in (mailed_link(outbox, "View in your browser"), mailed_link(outbox, "Atom feed"), unsubscribe):
        answer = client.get(path)
        assert answer.status_code == 200 and "private" in answer.headers["cache-control"], path
    assert "no-store" in client.get(unsubscribe).headers["cache-control"]
    assert "no-store" in client.get(unsubscribe + "x").headers["cache-control"]  # a refusal too
    assert "cache-control" not in client.get("/topics/robots.atom").headers  # public: the reader's choice


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
