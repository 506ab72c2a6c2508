"""Hostile and broken input found in review: every one is refused cleanly or handled, never a crash."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paperdigest import clock, config
from paperdigest.errors import SourceError
from paperdigest.ingest import job
from paperdigest.ingest.job import poll_source
from paperdigest.service.scheduler import Service
from paperdigest.sources.directory import DirectorySource
from paperdigest.sources.http import HttpSource, redact
from paperdigest.store.engine import open_engine
from tests.conftest import ROOT, SEEDS
from tests.storehelp import rows


def one_line_error(result: Any) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    return lines[0]


def item(arxiv: str | None, title: str, upvotes: Any = 3) -> dict[str, Any]:
    paper: dict[str, Any] = {"title": title, "summary": "An abstract.", "upvotes": upvotes, "authors": []}
    if arxiv:
        paper["id"] = arxiv
    return {"paper": paper}


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("nested.json", "[" * 200_000, "nested too deeply"),
        ("bigint.json", '[{"paper": {"title": "T", "upvotes": ' + "9" * 5000 + "}}]", "invalid JSON"),
        ("props.html", '<div data-target="DailyPapers" data-props="' + "[" * 200_000 + '"></div>', "nested too deeply"),
        (
            "upvotes.txt",
            "Daily Papers\n\nNov 4\n\nTitle\n\nAbstract.\n\n  • 3 authors\n·\nMar 20 " + "9" * 30 + "\n",
            "expected a date line",
        ),
    ],
)
def test_absurd_dumps_are_refused_with_exit_2(
    cli: Any, db_url: str, tmp_path: Path, name: str, content: str, says: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = cli("--db", db_url, "ingest", str(path))
    assert result.code == 2
    line = one_line_error(result)
    assert name in line and says in line


def test_out_of_range_upvotes_in_json_are_unknown(cli: Any, db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text(json.dumps([item("2401.00001", "Huge", upvotes=10**30)]), encoding="utf-8")
    result = cli("parse", str(path))
    assert result.code == 0 and result.json_lines()[0]["upvotes"] is None
    assert cli("--db", db_url, "ingest", str(path)).code == 0


def test_the_same_arxiv_id_twice_in_one_listing_is_one_paper(cli: Any, db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    items = [
        item(None, "Foo Bar Agents"),
        item("2401.00001", "Foo Bar Agents"),
        item("2401.00001", "Foo Bar Agents, revised title", upvotes=9),
    ]
    path.write_text(json.dumps(items), encoding="utf-8")
    result = cli("--db", db_url, "ingest", str(path), "--json")
    assert result.code == 0, result.err
    assert result.json_lines()[0]["new"] == 1
    assert rows(db_url, "SELECT arxiv_id, upvotes FROM paper") == [("2401.00001", 3)]


def test_nested_unclosed_cards_parse_without_blowing_up(tmp_path: Path) -> None:
    """Each card used to walk every enclosing card: 1,000 unclosed cards took minutes."""
    page = "<html><body>" + '<article><h3><a href="/papers/2401.00003">T</a></h3><p>7</p>' * 1000 + "</body></html>"
    path = tmp_path / "nested.html"
    path.write_text(page, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "paperdigest", "parse", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (entry,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert entry["arxiv_id"] == "2401.00003" and entry["upvotes"] == 7


def test_a_file_that_breaks_the_parser_is_rejected_not_retried_forever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    engine = open_engine(db_url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = inbox / "weird.txt"
    target.write_bytes((SEEDS / "004_d0e4e6143df38525.txt").read_bytes())
    os.utime(target, (0, 0))

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(job, "parse_dump", boom)
    result = poll_source(engine, DirectorySource("inbox", inbox), dt.datetime.now(dt.UTC))
    assert [r.file for r in result.rejected] == ["weird.txt"]
    assert (inbox / "rejected" / "weird.txt").exists()
    assert "RuntimeError" in (inbox / "rejected" / "weird.txt.error").read_text()


def test_a_config_that_is_not_utf8_is_refused(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[[subscribers]]\nemail = "a@example.org"\nname = "Jörg"\n'.encode("latin-1"))
    result = cli("--config", str(path), "status")
    assert result.code == 2 and "not UTF-8" in one_line_error(result)


def test_sighup_with_an_undecodable_config_keeps_the_running_one(tmp_path: Path, db_url: str) -> None:

    path = tmp_path / "c.toml"
    path.write_text('[[subscribers]]\nemail = "a@example.org"\n', encoding="utf-8")
    service = Service(config.load(path), db_url, str(path))
    path.write_bytes(b'[[subscribers]]\nemail = "b@example.org"\nname = "J\xf6rg"\n')
    service.reload()
    assert [s.email for s in service.settings.subscribers] == ["a@example.org"]


def test_source_urls_are_redacted_in_errors(tmp_path: Path) -> None:
    url = "http://digest:S3cretPassw0rd@127.0.0.1:9/api/daily_papers?token=TOPSECRET&date=2026-01-01"
    assert redact(url) == "http://127.0.0.1:9/api/daily_papers?token=…&date=…"
    source = HttpSource("api", url, archive=tmp_path, sleep=lambda s: None, backoff=0)
    with pytest.raises(SourceError) as info:
        source.get({})
    assert "S3cret" not in str(info.value) and "TOPSECRET" not in str(info.value)
    if source.client is not None:
        source.client.close()


def test_the_clock_is_always_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERDIGEST_NOW", "2025-01-06T08:00:00+02:00")
    assert clock.now() == dt.datetime(2025, 1, 6, 6, 0, tzinfo=dt.UTC)
    assert clock.now().utcoffset() == dt.timedelta(0)
