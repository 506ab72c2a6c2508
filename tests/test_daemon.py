"""The daemon as a real process: READY over NOTIFY_SOCKET, inbox, mail, signals, one instance."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paperdigest.ingest.job import poll_source
from paperdigest.sources.directory import DirectorySource
from paperdigest.store.engine import open_engine
from tests.conftest import ROOT, SEEDS
from tests.smtp_server import Handler, SmtpServer

SEED = SEEDS / "004_d0e4e6143df38525.txt"
SEED2 = SEEDS / "002_35bc1272005cc0d3.txt"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="pdn", dir="/tmp")  # short: unix socket paths are limited
        self.path = os.path.join(self.folder, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return self.messages

    def seen(self, field: str) -> bool:
        return any(
            field in line.split("\n") or any(p.startswith(field) for p in line.split("\n")) for line in self.drain()
        )

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def notify() -> Iterator[NotifyListener]:
    listener = NotifyListener()
    yield listener
    listener.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(Handler()).start()
    yield server
    server.stop()


def drop(inbox: Path, seed: Path, name: str | None = None) -> Path:
    """A finished file: copied, then dated in the past so it counts as settled."""
    target = inbox / (name or seed.name)
    shutil.copyfile(seed, target)
    old = time.time() - 60
    os.utime(target, (old, old))
    return target


def write_config(tmp_path: Path, port: int, inbox: Path, cron: str = "* * * * *") -> Path:
    path = tmp_path / "paperdigest.toml"
    path.write_text(
        f'[[sources]]\nname = "inbox"\nkind = "directory"\npath = "{inbox}"\nevery = "1s"\n'
        '[topics.agents]\nkeywords = ["agent", "GUI"]\n[topics.robotics]\nkeywords = ["robot"]\n'
        f'[mail]\nfrom = "Digest <digest@example.org>"\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
        'security = "none"\ntimeout = 5\n'
        '[daemon]\ntick = "1s"\nmisfire_grace = "30s"\n'
        f'[[subscribers]]\nemail = "ada@example.org"\ntopics = ["agents"]\ncron = "{cron}"\n'
        f'[[subscribers]]\nemail = "grace@example.org"\ntopics = ["robotics"]\ncron = "{cron}"\n',
        encoding="utf-8",
    )
    return path


class Daemon:
    def __init__(
        self,
        config: Path,
        db: str,
        notify: NotifyListener | None,
        extra_env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        env = dict(os.environ, PAPERDIGEST_DB=db, PAPERDIGEST_CONFIG=str(config), **(extra_env or {}))
        env.pop("PAPERDIGEST_NOW", None)
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify.path
        self.log_path = log or config.with_name(f"daemon-{time.monotonic_ns()}.log")
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paperdigest", "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.log
        )

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def received_by(smtp: SmtpServer) -> dict[str, int]:
    return {k: len(v) for k, v in smtp.handler.by_recipient().items()}


def test_daemon_ingests_mails_reports_ready_and_stops_on_sigterm(
    tmp_path: Path, notify: NotifyListener, smtp: SmtpServer, daemons: list[Daemon], db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox, SEED)
    config = write_config(tmp_path, smtp.port, inbox)
    daemon = Daemon(config, db_url, notify)
    daemons.append(daemon)
    wait_for(lambda: notify.seen("READY=1"), what="READY=1")
    wait_for(lambda: received_by(smtp) == {"ada@example.org": 1, "grace@example.org": 1}, what="two digests")
    assert (inbox / "processed" / SEED.name).exists() and not (inbox / SEED.name).exists()
    wait_for(lambda: any("STATUS=last ingest:" in m for m in notify.drain()), what="a STATUS with the last ingest")
    status = [m for m in notify.drain() if "STATUS=last ingest: 20" in m]
    assert status and "next digest:" in status[-1]
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    assert notify.seen("STOPPING=1")
    log = daemon.text()
    assert "ingested 004_d0e4e6143df38525.txt" in log and "stopped" in log
    message = smtp.handler.by_recipient()["ada@example.org"][0].message
    assert "on agents" in str(message["Subject"])


def test_a_restarted_daemon_reports_the_stores_last_ingest_and_next_digest(
    tmp_path: Path, notify: NotifyListener, smtp: SmtpServer, daemons: list[Daemon], db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path, smtp.port, inbox, cron="0 0 1 1 *")  # the config's subscribers: yearly
    command = [sys.executable, "-m", "paperdigest", "--config", str(config), "--db", db_url]
    done = subprocess.run([*command, "ingest", str(SEED), "--json"], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    new = json.loads(done.stdout)["new"]
    add = [*command, "subscribers", "add", "zed@example.org", "--topics", "agents", "--cron", "0 */2 * * *"]
    assert subprocess.run(add, check=False, capture_output=True).returncode == 0
    daemons.append(Daemon(config, db_url, notify))  # its inbox is empty: it ingests nothing itself
    wait_for(lambda: any("STATUS=last ingest:" in m for m in notify.drain()), what="a STATUS with the last ingest")
    statuses = [m for m in notify.drain() if "STATUS=last ingest:" in m]
    assert statuses and all("none yet" not in m for m in statuses), statuses
    assert "STATUS=last ingest: 20" in statuses[0] and f"{SEED.name}: {new} new;" in statuses[0], statuses[0]
    assert statuses[0].endswith(" zed@example.org"), statuses[0]  # the next digest: the store's subscriber's


@pytest.mark.sqlite_only  # on PostgreSQL a second `run` stands by as a replica (tests/test_replicas.py)
def test_a_second_instance_is_refused(
    tmp_path: Path, notify: NotifyListener, smtp: SmtpServer, daemons: list[Daemon], db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path, smtp.port, inbox)
    db = db_url
    daemons.append(Daemon(config, db, notify))
    wait_for(lambda: notify.seen("READY=1"), what="READY=1")
    second = subprocess.run(
        [sys.executable, "-m", "paperdigest", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, PAPERDIGEST_DB=db, PAPERDIGEST_CONFIG=str(config)),
    )
    assert second.returncode == 1
    assert "already running" in second.stderr
    once = subprocess.run(
        [sys.executable, "-m", "paperdigest", "run", "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, PAPERDIGEST_DB=db, PAPERDIGEST_CONFIG=str(config)),
    )
    assert once.returncode == 1 and "already running" in once.stderr
    assert daemons[0].stop() == 0


def test_sigkill_and_restart_neither_loses_nor_repeats(
    tmp_path: Path, notify: NotifyListener, smtp: SmtpServer, daemons: list[Daemon], db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox, SEED)
    config = write_config(tmp_path, smtp.port, inbox, cron="0 7 * * *")  # one period a day
    # The killed daemon's claims (rows it sent but had not yet recorded) become the next one's
    # once its heartbeat is older than the takeover time: short here.
    config.write_text(config.read_text().replace('tick = "1s"', 'tick = "1s"\ntakeover = "1s"', 1))
    db = db_url

    def outbox() -> list[tuple[str, str]]:
        with open_engine(db).connect() as conn:
            found = conn.exec_driver_sql("SELECT subscriber, status FROM outbox ORDER BY subscriber").fetchall()
        return [(str(r[0]), str(r[1])) for r in found]

    first = Daemon(config, db, notify)
    daemons.append(first)
    wait_for(lambda: received_by(smtp) == {"ada@example.org": 1, "grace@example.org": 1}, what="two digests")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    drop(inbox, SEED2)  # arrives while the daemon is down
    second = Daemon(config, db, notify)
    daemons.append(second)
    wait_for((inbox / "processed" / SEED2.name).exists, what="the file dropped while down")
    sent = [("ada@example.org", "sent"), ("grace@example.org", "sent")]
    wait_for(lambda: outbox() == sent, timeout=60, what="the killed daemon's deliveries recorded")
    time.sleep(3)  # several ticks: nothing may be sent again for the same period
    assert received_by(smtp) == {"ada@example.org": 1, "grace@example.org": 1}
    assert second.stop() == 0
    assert outbox() == sent
    with open_engine(db).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM dump").scalar_one() == 2


def test_sighup_reloads_and_refuses_a_bad_config(
    tmp_path: Path, notify: NotifyListener, smtp: SmtpServer, daemons: list[Daemon], db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path, smtp.port, inbox)
    daemon = Daemon(config, db_url, notify, extra_env={"JOURNAL_STREAM": "8:1234"})
    daemons.append(daemon)
    wait_for(lambda: notify.seen("READY=1"), what="READY=1")
    good = config.read_text()
    config.write_text(good + '\n[[subscribers]]\nemail = "bad"\n')
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "new config refused" in daemon.text(), what="the refusal")
    # The new config drops grace for linus and mails empty digests: linus's first digest (his
    # current period) goes out on the next tick, without waiting for the cron's next minute.
    reloaded = good.replace('email = "grace@example.org"', 'email = "linus@example.org"')
    config.write_text(reloaded + "\n[digest]\nsend_empty = true\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in daemon.text(), what="the reload")
    wait_for(lambda: "linus@example.org" in received_by(smtp), timeout=20, what="mail after the reload")
    assert "grace@example.org" not in received_by(smtp)
    assert daemon.stop() == 0
    lines = [line for line in daemon.text().splitlines() if line]
    assert lines and all(re_priority(line) for line in lines), lines[:3]
    assert not any(line[3:5].isdigit() and "T" in line[:30] for line in lines)  # no timestamps under journald


def re_priority(line: str) -> bool:
    return len(line) > 3 and line[0] == "<" and line[1].isdigit() and line[2] == ">"


def test_watchdog_pings(
    tmp_path: Path, notify: NotifyListener, smtp: SmtpServer, daemons: list[Daemon], db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path, smtp.port, inbox)
    daemon = Daemon(config, db_url, notify, extra_env={"WATCHDOG_USEC": "1000000"})
    daemons.append(daemon)
    wait_for(lambda: sum("WATCHDOG=1" in m for m in notify.drain()) >= 3, timeout=20, what="watchdog pings")
    assert daemon.stop() == 0


# --- run --once ------------------------------------------------------------------------------


def test_run_once_on_the_embedded_default_leaves_a_sample(tmp_path: Path) -> None:
    env = dict(os.environ, STATE_DIRECTORY=str(tmp_path / "state"))
    for key in ("PAPERDIGEST_DB", "PAPERDIGEST_CONFIG", "PAPERDIGEST_NOW"):
        env.pop(key, None)

    def run_once() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "paperdigest", "run", "--once"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    result = run_once()
    assert result.returncode == 0, result.stdout + result.stderr
    outbox = tmp_path / "state" / "outbox"
    emls = list(outbox.glob("*.eml"))
    assert len(emls) == 1 and emls[0].with_suffix(".html").exists()
    assert str(emls[0]) in result.stdout  # it says where
    assert "5 new dumps" in result.stdout
    again = run_once()
    assert again.returncode == 0 and len(list(outbox.glob("*.eml"))) == 1  # nothing twice
    # A preview right after: empty (all was just mailed), and it says so and what to do.
    preview = subprocess.run(
        [sys.executable, "-m", "paperdigest", "digest"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert preview.returncode == 0 and "Nothing new matched" in preview.stdout
    assert "demo@localhost: nothing new since" in preview.stderr and "--since" in preview.stderr


def test_run_once_exit_codes(
    cli: Any, tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = str(write_config(tmp_path, smtp.port, inbox))
    db = db_url
    (inbox / "garbage.txt").write_bytes(b"\x00\x01\x02")
    old = time.time() - 60
    os.utime(inbox / "garbage.txt", (old, old))
    rejected = cli("--config", config, "--db", db, "run", "--once")
    assert rejected.code == 2 and "rejected garbage.txt" in rejected.out
    assert (inbox / "rejected" / "garbage.txt").exists()
    assert "binary" in (inbox / "rejected" / "garbage.txt.error").read_text()
    smtp.stop()
    drop(inbox, SEED)
    monkeypatch.setenv("PAPERDIGEST_NOW", (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)).isoformat())
    down = cli("--config", config, "--db", db, "run", "--once")
    assert down.code == 1 and "cannot connect" in down.out


# --- the inbox ------------------------------------------------------------------------------


def test_files_being_written_wait_for_the_next_poll(tmp_path: Path, db_url: str) -> None:
    engine = open_engine(db_url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = DirectorySource("inbox", inbox)
    now = dt.datetime.now(dt.UTC)
    (inbox / "big.txt.part").write_bytes(SEED.read_bytes()[:100])
    (inbox / ".hidden.txt").write_bytes(SEED.read_bytes())
    fresh = inbox / "fresh.txt"
    fresh.write_bytes(SEED.read_bytes()[:5000])  # just written, still growing
    first = poll_source(engine, source, now)
    assert first.ingested == [] and first.waiting == ["fresh.txt"]
    with fresh.open("ab") as handle:
        handle.write(SEED.read_bytes()[5000:])
    second = poll_source(engine, source, now)
    assert second.ingested == [] and second.waiting == ["fresh.txt"]  # it changed since the last poll
    third = poll_source(engine, source, now)  # unchanged since the last poll: settled
    assert len(third.ingested) == 1 and (inbox / "processed" / "fresh.txt").exists()
    assert (inbox / "big.txt.part").exists() and (inbox / ".hidden.txt").exists()  # never touched


def test_nothing_is_ever_deleted_or_overwritten(tmp_path: Path, db_url: str) -> None:
    engine = open_engine(db_url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = DirectorySource("inbox", inbox)
    now = dt.datetime.now(dt.UTC)
    drop(inbox, SEED, "same.txt")
    poll_source(engine, source, now)
    drop(inbox, SEED, "same.txt")  # the same name again (a duplicate dump)
    result = poll_source(engine, source, now)
    assert result.ingested[0].duplicate_dump
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["same.txt", "same.txt.1"]


def test_a_read_only_source_remembers_by_content_hash(tmp_path: Path, db_url: str) -> None:
    engine = open_engine(db_url)
    folder = tmp_path / "seeds"
    folder.mkdir()
    shutil.copyfile(SEED, folder / SEED.name)
    source = DirectorySource("seeds", folder, move=False)
    now = dt.datetime.now(dt.UTC)
    assert len(poll_source(engine, source, now).ingested) == 1
    assert poll_source(engine, source, now).ingested == []  # known by its hash: not even parsed again
    assert sorted(p.name for p in folder.iterdir()) == [SEED.name]


def test_a_new_leader_looks_again_once_the_takeover_time_has_passed(
    tmp_path: Path, smtp: SmtpServer, daemons: list[Daemon], db_url: str
) -> None:
    """A dead sender's claims are taken over after the takeover time: the new leader sends again
    then, not only at its next tick (an hour here)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path, smtp.port, inbox)
    config.write_text(config.read_text().replace('tick = "1s"', 'tick = "1h"\ntakeover = "1s"', 1))
    assert 'tick = "1h"\ntakeover = "1s"' in config.read_text()
    daemon = Daemon(config, db_url, None)
    daemons.append(daemon)
    wait_for(lambda: "the takeover time has passed" in daemon.text(), timeout=30, what="the takeover pass")
    assert daemon.stop() == 0
