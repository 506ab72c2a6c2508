"""Subscribers without editing TOML: `subscribers add|list|remove`, kept in the store beside the
config's (which wins for the addresses it names); an unsubscribed address is never mailed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paperdigest import subscribers
from paperdigest.config import load
from paperdigest.store.engine import open_engine
from tests.conftest import SEEDS
from tests.smtp_server import Handler, SmtpServer
from tests.test_daemon import Daemon, drop, wait_for

NOW = "2026-11-23T12:00:00+00:00"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(Handler()).start()
    yield server
    server.stop()


def config(tmp_path: Path, port: int, extra: str = "") -> str:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[[sources]]\nname = "inbox"\nkind = "directory"\npath = "{tmp_path / "inbox"}"\nevery = "1s"\n'
        '[topics.agents]\nkeywords = ["agent", "GUI"]\n[topics.robotics]\nkeywords = ["robot"]\n'
        f'[mail]\nfrom = "Digest <digest@example.org>"\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
        'security = "none"\ntimeout = 5\n[daemon]\ntick = "1s"\n'
        '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["agents"]\ncron = "0 7 * * *"\n' + extra,
        encoding="utf-8",
    )
    (tmp_path / "inbox").mkdir(exist_ok=True)
    return str(path)


def test_add_list_remove_and_send(cli: Any, tmp_path: Path, db_url: str, smtp: SmtpServer, monkeypatch: Any) -> None:
    conf = config(tmp_path, smtp.port)
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW)
    added = cli("--config", conf, "--db", db_url, "subscribers", "add", "Grace@Example.org", "--topics", "robotics",
                "--cron", "0 9 * * *", "--timezone", "Europe/Berlin", "--max-papers", "5")  # fmt: skip
    assert added.code == 0 and "grace@example.org added" in added.out
    lines = cli("--config", conf, "--db", db_url, "subscribers", "list", "--json").json_lines()
    listed = {s["email"].lower(): s for s in lines}
    assert listed["ada@example.org"]["origin"] == "config" and listed["grace@example.org"]["origin"] == "store"
    assert listed["grace@example.org"]["topics"] == ["robotics"] and listed["grace@example.org"]["max_papers"] == 5
    assert all(s["subscribed"] for s in listed.values())
    text = cli("--config", conf, "--db", db_url, "subscribers", "list")
    assert "grace@example.org  [store, subscribed]" in text.out.lower()

    assert cli("--db", db_url, "ingest", str(SEEDS / "003_00886173680504fb.txt"), "--as-of", "2026-11-23").code == 0
    sent = cli("--config", conf, "--db", db_url, "send")
    assert sent.code == 0, sent.out + sent.err
    assert set(smtp.handler.by_recipient()) == {"ada@example.org", "grace@example.org"}

    removed = cli("--config", conf, "--db", db_url, "subscribers", "remove", "grace@example.org")
    assert removed.code == 0
    emails = [s["email"] for s in cli("--config", conf, "--db", db_url, "subscribers", "list", "--json").json_lines()]
    assert emails == ["ada@example.org"]
    # One the config names is unsubscribed instead (the store wins over the config): listed, never mailed.
    config_one = cli("--config", conf, "--db", db_url, "subscribers", "remove", "ada@example.org")
    assert config_one.code == 0 and "in the config" in config_one.out and "unsubscribed" in config_one.out
    listed = cli("--config", conf, "--db", db_url, "subscribers", "list", "--json").json_lines()
    assert [(s["email"], s["subscribed"]) for s in listed] == [("ada@example.org", False)]
    assert cli("--db", db_url, "ingest", str(SEEDS / "004_d0e4e6143df38525.txt"), "--as-of", "2026-11-30").code == 0
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-30T08:00:00+00:00")
    assert cli("--config", conf, "--db", db_url, "send").out.strip() == "nothing due"
    assert len(smtp.handler.by_recipient()["ada@example.org"]) == 1  # only the digest before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "0 7 * *"], "cron"),
        (["--timezone", "Mars/Olympus"], "timezone"),
        (["--topics", "cooking"], "unknown topic 'cooking'"),
        ([], "email: not a mail address (name@domain): 'not-an-address'"),
    ],
)
def test_values_are_checked_like_the_config(
    cli: Any, tmp_path: Path, db_url: str, args: list[str], message: str, capsys: Any
) -> None:
    conf = config(tmp_path, 25)
    email = "not-an-address" if not args else "bob@example.org"
    result = cli("--config", conf, "--db", db_url, "subscribers", "add", email, *args)
    assert result.code == 2 and message in result.err
    assert subscribers.subscriptions(open_engine(db_url), load(Path(conf)))[-1].settings.email == "ada@example.org"


def test_the_config_wins_and_an_unsubscribed_address_is_never_mailed(
    cli: Any, tmp_path: Path, db_url: str, smtp: SmtpServer, monkeypatch: Any
) -> None:
    conf = config(tmp_path, smtp.port)
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW)
    kept = cli("--config", conf, "--db", db_url, "subscribers", "add", "ada@example.org", "--topics", "robotics")
    assert kept.code == 0 and "keeps" in kept.out
    engine = open_engine(db_url)
    settings = load(Path(conf))
    assert subscribers.effective(engine, settings).subscribers[0].topics == ["agents"]  # the config's

    assert cli("--db", db_url, "ingest", str(SEEDS / "003_00886173680504fb.txt"), "--as-of", "2026-11-23").code == 0
    queued = cli("--config", conf, "--db", db_url, "send", "--dry-run")
    assert "ada@example.org" in queued.out
    subscribers.unsubscribe(engine, "ADA@example.org")  # one-click, from the mail
    assert subscribers.effective(engine, settings).subscribers == []
    assert cli("--config", conf, "--db", db_url, "send").code == 0
    assert smtp.handler.received == []  # still in the TOML: not mailed
    listed = cli("--config", conf, "--db", db_url, "subscribers", "list", "--json").json_lines()
    assert listed[0]["subscribed"] is False and listed[0]["origin"] == "config"
    status = cli("--config", conf, "--db", db_url, "status", "--json").json_lines()[0]
    assert [run["job"] for run in status["next_runs"] if run["job"].startswith("digest:")] == []

    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-24T12:00:00+00:00")
    assert cli("--config", conf, "--db", db_url, "subscribers", "add", "ada@example.org").code == 0  # added again
    assert cli("--config", conf, "--db", db_url, "send").code == 0
    assert list(smtp.handler.by_recipient()) == ["ada@example.org"]


def test_a_digest_queued_before_an_unsubscribe_is_not_sent(
    cli: Any, tmp_path: Path, db_url: str, smtp: SmtpServer, monkeypatch: Any
) -> None:
    conf = config(tmp_path, smtp.port)
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW)
    assert cli("--db", db_url, "ingest", str(SEEDS / "003_00886173680504fb.txt"), "--as-of", "2026-11-23").code == 0
    smtp.stop()  # the digest is queued, the server is down: it waits in the outbox
    assert cli("--config", conf, "--db", db_url, "send").code == 1
    subscribers.unsubscribe(open_engine(db_url), "ada@example.org")
    up = SmtpServer(Handler(), port=smtp.port).start()
    try:
        monkeypatch.setenv("PAPERDIGEST_NOW", (dt.datetime.fromisoformat(NOW) + dt.timedelta(hours=1)).isoformat())
        assert cli("--config", conf, "--db", db_url, "send").code == 0
        assert up.handler.received == []
    finally:
        up.stop()
    counts = cli("--config", conf, "--db", db_url, "status", "--json").json_lines()[0]["mail"]["counts"]
    assert counts["cancelled"] == 1


def test_the_daemon_picks_up_a_new_subscriber_without_a_restart(
    cli: Any, tmp_path: Path, db_url: str, smtp: SmtpServer
) -> None:
    conf = config(tmp_path, smtp.port)
    drop(tmp_path / "inbox", SEEDS / "003_00886173680504fb.txt")
    daemon = Daemon(Path(conf), db_url, None)
    try:
        wait_for(lambda: "ingested" in daemon.text(), what="the first ingest")
        added = cli("--config", conf, "--db", db_url, "subscribers", "add", "linus@example.org",
                    "--topics", "robotics", "--cron", "* * * * *")  # fmt: skip
        assert added.code == 0
        wait_for(lambda: "linus@example.org" in smtp.handler.by_recipient(), timeout=30, what="linus's digest")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    again = Daemon(Path(conf), db_url, None)  # a restart counts the store's subscribers with the config's
    try:
        wait_for(lambda: "paperdigest started" in again.text(), what="the start line")
        assert "paperdigest started: 1 sources, 2 subscribers" in again.text()
        assert again.stop() == 0
    finally:
        again.kill()


def test_adding_an_address_the_store_keeps_changes_only_the_options_given(
    cli: Any, tmp_path: Path, db_url: str
) -> None:
    """`subscribers add` again, with one option, to change it (or to subscribe an address again
    after an unsubscribe): the options not given keep what the store holds, never the defaults."""
    conf = config(tmp_path, 25)

    def grace() -> dict[str, Any]:
        listed = cli("--config", conf, "--db", db_url, "subscribers", "list", "--json").json_lines()
        return next(s for s in listed if s["email"].lower() == "grace@example.org")

    options = ["--topics", "robotics", "--cron", "0 9 * * MON-FRI", "--timezone", "Europe/Berlin", "--max-papers", "5"]
    options += ["--name", "Grace"]
    added = cli("--config", conf, "--db", db_url, "subscribers", "add", "grace@example.org", *options)
    assert added.code == 0 and added.out.strip() == "grace@example.org added to the store"
    before = grace()
    changed = cli("--config", conf, "--db", db_url, "subscribers", "add", "grace@example.org", "--format", "text")
    assert changed.code == 0 and changed.out.strip() == "grace@example.org changed in the store: format"
    assert grace() == {**before, "format": "text"}
    same = cli("--config", conf, "--db", db_url, "subscribers", "add", "grace@example.org")
    assert same.out.strip() == "grace@example.org is in the store already, as given"
    assert grace() == {**before, "format": "text"}

    subscribers.unsubscribe(open_engine(db_url), "grace@example.org")  # one-click, from the mail
    again = cli("--config", conf, "--db", db_url, "subscribers", "add", "grace@example.org")
    assert again.code == 0 and again.out.strip() == "grace@example.org subscribed again"
    assert grace() == {**before, "format": "text"}
    everything = cli("--config", conf, "--db", db_url, "subscribers", "add", "grace@example.org", "--topics", "")
    assert everything.out.strip() == "grace@example.org changed in the store: topics"
    assert grace()["topics"] == [] and grace()["cron"] == "0 9 * * MON-FRI"
