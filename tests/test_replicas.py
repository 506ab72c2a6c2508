"""Replicas on one PostgreSQL store: one leads (a session advisory lock), the others stand by and
take over within `[daemon] takeover` when the leader dies; `status` lists them all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from tests import pgserver
from tests.conftest import ROOT, SEEDS
from tests.pgserver import no_postgresql
from tests.smtp_server import Handler, SmtpServer
from tests.test_daemon import Daemon, NotifyListener, drop, wait_for

SEED = SEEDS / "004_d0e4e6143df38525.txt"
TAKEOVER = 3  # seconds


@pytest.fixture(scope="module")
def pg_server() -> Iterator[pgserver.PgServer]:
    try:
        with pgserver.server() as server:
            yield server
    except RuntimeError as exc:
        no_postgresql(str(exc))


@pytest.fixture
def pg_url(pg_server: pgserver.PgServer) -> str:
    name = f"replicas_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return pg_server.url(name)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(Handler()).start()
    yield server
    server.stop()


def config(tmp_path: Path, port: int, inbox: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[[sources]]\nname = "inbox"\nkind = "directory"\npath = "{inbox}"\nevery = "1s"\n'
        '[topics.agents]\nkeywords = ["agent", "GUI"]\n'
        f'[mail]\nfrom = "Digest <digest@example.org>"\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
        'security = "none"\ntimeout = 5\n'
        f'[daemon]\ntick = "1s"\nmisfire_grace = "30s"\ntakeover = "{TAKEOVER}s"\n'
        '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["agents"]\ncron = "* * * * *"\n',
        encoding="utf-8",
    )
    return path


def status(conf: Path, db: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "paperdigest", "--config", str(conf), "--db", db, "status", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode == 1 and not result.stdout and "no store in" in result.stderr:
        return {"replicas": []}  # the first daemon has not made the schema yet: `status` creates none
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def alive_roles(conf: Path, db: str) -> dict[str, str]:
    """pid -> role of the replicas whose heartbeat is fresh."""
    return {str(r["pid"]): r["role"] for r in status(conf, db)["replicas"] if r["alive"]}


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def a_leader(tmp_path: Path, pg_url: str, smtp: SmtpServer, daemons: list[Daemon]) -> tuple[Path, Daemon]:
    """A config with an inbox, and a daemon on it that leads the store."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    conf = config(tmp_path, smtp.port, inbox)
    first = Daemon(conf, pg_url, None)
    daemons.append(first)
    wait_for(lambda: alive_roles(conf, pg_url) == {str(first.proc.pid): "leader"}, what="a leader")
    return conf, first


def test_one_leads_one_stands_by_and_takes_over_when_the_leader_dies(
    tmp_path: Path, pg_url: str, smtp: SmtpServer, daemons: list[Daemon]
) -> None:
    conf, first = a_leader(tmp_path, pg_url, smtp, daemons)
    second = Daemon(conf, pg_url, None)
    daemons.append(second)
    wait_for(
        lambda: alive_roles(conf, pg_url) == {str(first.proc.pid): "leader", str(second.proc.pid): "standby"},
        what="a standby beside the leader",
    )
    report = status(conf, pg_url)
    assert {"id", "host", "pid", "role", "since", "last_seen", "alive"} <= set(report["replicas"][0])

    # A second cycle cannot run beside the leader.
    once = subprocess.run(
        [sys.executable, "-m", "paperdigest", "--config", str(conf), "--db", pg_url, "run", "--once"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert once.returncode == 1 and "leads this store" in once.stderr

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    drop(tmp_path / "inbox", SEED)  # arrives while nobody leads
    wait_for(
        lambda: alive_roles(conf, pg_url).get(str(second.proc.pid)) == "leader",
        timeout=TAKEOVER * 3 + 10,
        what="the standby to take over",
    )
    wait_for(lambda: smtp.handler.by_recipient().get("ada@example.org"), timeout=70, what="mail from the new leader")
    messages = smtp.handler.by_recipient()["ada@example.org"]
    ids = [item.message["Message-ID"] for item in messages]
    assert len(ids) == len(set(ids)), "a digest was sent twice"
    assert second.stop() == 0
    assert [r for r in status(conf, pg_url)["replicas"] if r["pid"] == second.proc.pid] == []  # left cleanly


def test_a_leader_killed_in_the_middle_of_a_batch_is_replaced_and_no_digest_is_lost_or_repeated(
    tmp_path: Path, pg_url: str, daemons: list[Daemon]
) -> None:
    """`[daemon] takeover = "1s"`: the leader is SIGKILLed after the server took 5 of 20 digests.
    The standby leads, takes over the dead leader's claims (its heartbeat stops) and reservations,
    and sends the rest: every subscriber gets its digest, one Message-ID each; the only repeat
    SMTP allows is the one message whose 250 raced the kill, byte-identical."""
    subscribers = [f"reader{i:02d}@example.org" for i in range(20)]
    handler = Handler(delay=0.05)
    server = SmtpServer(handler).start()
    try:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        conf = config(tmp_path, server.port, inbox)
        text = conf.read_text(encoding="utf-8").replace(f'takeover = "{TAKEOVER}s"', 'takeover = "1s"')
        text = text.split("[[subscribers]]")[0] + "".join(
            f'[[subscribers]]\nemail = "{s}"\ntopics = ["agents"]\ncron = "* * * * *"\n' for s in subscribers
        )
        conf.write_text(text, encoding="utf-8")
        first = Daemon(conf, pg_url, None)
        daemons.append(first)
        wait_for(lambda: alive_roles(conf, pg_url) == {str(first.proc.pid): "leader"}, what="a leader")
        second = Daemon(conf, pg_url, None)
        daemons.append(second)
        wait_for(lambda: alive_roles(conf, pg_url).get(str(second.proc.pid)) == "standby", what="a standby")

        def kill_at(count: int) -> None:
            if count == 5:
                first.proc.send_signal(signal.SIGKILL)

        handler.on_message = kill_at
        drop(inbox, SEED)  # the leader ingests it, and sends 20 digests at the next minute
        first.proc.wait(120)
        assert first.proc.returncode == -signal.SIGKILL
        handler.on_message = None
        wait_for(lambda: sorted(handler.by_recipient()) == subscribers, timeout=90, what="every digest")
        assert alive_roles(conf, pg_url).get(str(second.proc.pid)) == "leader"
        wait_for(lambda: status(conf, pg_url)["mail"]["counts"].get("sent") == 20, what="every digest settled")
        repeats = 0
        for recipient, items in handler.by_recipient().items():
            assert len({item.message["Message-ID"] for item in items}) == 1, f"{recipient} got two digests"
            assert len({item.data for item in items}) == 1
            repeats += len(items) - 1
        assert repeats <= 1
        assert second.stop() == 0
        assert "Traceback" not in second.text()
    finally:
        server.stop()


def test_a_standby_feeds_the_watchdog_and_says_it_stands_by(
    tmp_path: Path, pg_url: str, smtp: SmtpServer, daemons: list[Daemon]
) -> None:
    """Under systemd (WatchdogSec) a standby that never pinged would be killed and restarted
    forever: it is a healthy process, and says so."""
    conf, first = a_leader(tmp_path, pg_url, smtp, daemons)
    listener = NotifyListener()
    try:
        second = Daemon(conf, pg_url, listener, extra_env={"WATCHDOG_USEC": "1000000"})
        daemons.append(second)
        wait_for(lambda: alive_roles(conf, pg_url).get(str(second.proc.pid)) == "standby", what="a standby")
        wait_for(lambda: sum("WATCHDOG=1" in m for m in listener.drain()) >= 3, timeout=20,
                 what="the standby's watchdog pings")  # fmt: skip
        assert alive_roles(conf, pg_url)[str(second.proc.pid)] == "standby"  # pinged while standing by
        assert "stands by:" in second.text() and "leads the store" in second.text()
        assert second.stop() == 0
    finally:
        listener.close()
    assert first.stop() == 0
