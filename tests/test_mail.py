"""Mail that arrives exactly once: a real SMTP server on loopback, checked by what it received."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import pstats
import re
import signal
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import threading
import threading as th
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trustme
from sqlalchemy import create_engine, event, update
from sqlalchemy.pool import NullPool

from paperdigest.config import load, validate
from paperdigest.digest import job as digest_job
from paperdigest.errors import ConfigError
from paperdigest.ingest import apply
from paperdigest.mail import outbox as outbox_module
from paperdigest.mail.message import build_message, message_id
from paperdigest.mail.smtp import SmtpOptions, SmtpTransport
from paperdigest.model import RawDump
from paperdigest.parse import parse_dump
from paperdigest.service.leader import Replica
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from paperdigest.store.tables import outbox_table, replica_table
from tests.conftest import ROOT, SEED_AS_OF, SEEDS
from tests.smtp_server import Authenticator, Handler, SmtpServer, free_port
from tests.storehelp import connect, dicts, rows, scalar

INGESTED = "2026-11-22T08:00:00+00:00"
SEND_AT = "2026-11-23T09:00:00+00:00"  # the 07:00 UTC period of Nov 23 is due
LATER = "2026-11-23T09:01:00+00:00"  # the same period, past the takeover time (30 s) of a sender at SEND_AT


def config_text(
    port: int,
    subscribers: list[str],
    *,
    security: str = "none",
    username: str | None = None,
    ca_file: Path | None = None,
    password_file: Path | None = None,
) -> str:
    lines = [
        "[topics.agents]",
        'keywords = ["agent", "GUI"]',
        "[topics.robotics]",
        'keywords = ["robot"]',
        "[mail]",
        'from = "Paper Digest <digest@example.org>"',
        'transport = "smtp"',
        'host = "127.0.0.1"',
        f"port = {port}",
        f'security = "{security}"',
        "timeout = 10",
    ]
    if username:
        lines.append(f'username = "{username}"')
    if ca_file:
        lines.append(f'ca_file = "{ca_file}"')
    if password_file:
        lines.append(f'password_file = "{password_file}"')
    for index, address in enumerate(subscribers):
        topics = '["agents"]' if index % 2 == 0 else '["robotics"]'
        lines += ["[[subscribers]]", f'email = "{address}"', f"topics = {topics}", 'cron = "0 7 * * *"']
    return "\n".join(lines) + "\n"


@pytest.fixture
def store(db_url: str, monkeypatch: pytest.MonkeyPatch, cli: Any) -> str:
    """The seeds ingested at INGESTED (so they fall in the Nov 23 07:00 period); returns the db URL."""
    db = db_url
    monkeypatch.setenv("PAPERDIGEST_NOW", INGESTED)
    for name, as_of in SEED_AS_OF.items():
        assert cli("--db", db, "ingest", str(SEEDS / name), "--as-of", as_of).code == 0
    monkeypatch.setenv("PAPERDIGEST_NOW", SEND_AT)
    return db


@pytest.fixture
def smtp(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """aiosmtpd on loopback; indirectly parametrized True, it offers PIPELINING."""
    server = SmtpServer(Handler(pipelining=getattr(request, "param", False))).start()
    yield server
    server.stop()


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "paperdigest.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def outbox(db_url: str) -> list[dict[str, Any]]:
    return dicts(db_url, "outbox", order_by="id")


# --- the message -----------------------------------------------------------------------------


def test_message_structure_and_headers() -> None:
    period = dt.datetime(2026, 11, 3, 7, tzinfo=dt.UTC)
    msg_id = message_id("zoë@example.org", period, "Paper Digest <digest@example.org>")
    raw = bytes(
        build_message(
            from_header="Paper Digest <digest@example.org>",
            to_email="zoe@example.org",
            to_name="Zoë Ünal",
            subject="Paper digest — 12 new papers on agents, robotics (Nov 3)",
            text="Grüße\n",
            html="<p>Grüße</p>",
            msg_id=msg_id,
            date=period,
        )
    )
    assert all(byte < 128 for byte in raw)  # every header encoded, bodies transfer-encoded
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in parsed.iter_parts()]  # type: ignore[attr-defined]
    assert parts == ["text/plain", "text/html"]  # the part clients prefer comes last
    assert str(parsed["Subject"]) == "Paper digest — 12 new papers on agents, robotics (Nov 3)"
    assert str(parsed["To"]) == "Zoë Ünal <zoe@example.org>"
    assert parsed["Message-ID"] == msg_id
    assert msg_id == message_id("ZOË@example.org", period, "x <digest@example.org>")  # stable per pair
    assert msg_id != message_id("zoë@example.org", period + dt.timedelta(days=1), "x <digest@example.org>")
    assert email.utils.parsedate_to_datetime(parsed["Date"]) == period
    assert parsed["List-Unsubscribe"].strip().startswith("<mailto:digest@example.org?")
    assert parsed["List-Id"] and parsed["From"] == "Paper Digest <digest@example.org>"
    text_part = next(parsed.iter_parts())  # type: ignore[attr-defined]
    assert text_part.get_content_charset() == "utf-8"
    assert text_part.get_content().replace("\r\n", "\n") == "Grüße\n"


@pytest.mark.parametrize(
    "message",
    [
        b".starts with a dot\r\n.\r\n..two\r\nmid . dot\r\n.\r\n",
        b"Subject: x\r\n\r\nno line end at the end\r\n.",
        b"Subject: x\r\n\r\n" + b"\r\n".join(b"." * n for n in range(5)) + b"\r\n",
    ],
)
def test_our_data_stuffs_dots_as_smtplib_does(smtp: SmtpServer, message: bytes) -> None:
    """SmtpTransport's DATA (dot-stuffing by bytes.replace) delivers what smtplib's own does."""
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
        client.sendmail("digest@example.org", ["stock@example.org"], message)
    options = SmtpOptions("127.0.0.1", smtp.port, "none", None, None, 10.0)
    with SmtpTransport(options) as transport:
        transport.send(sender="digest@example.org", recipient="ours@example.org", message=message, name="x")
    received = smtp.handler.by_recipient()
    assert received["ours@example.org"][0].data == received["stock@example.org"][0].data
    assert received["ours@example.org"][0].data.rstrip(b"\r\n") == message.rstrip(b"\r\n")


def test_header_tricks_cannot_add_a_header() -> None:
    raw = bytes(
        build_message(
            from_header="Paper Digest <digest@example.org>",
            to_email="a@example.org",
            to_name="Eve\r\nBcc: victim@example.org",
            subject="Hi\r\nBcc: victim@example.org\nX-Evil: 1",
            text="body",
            html=None,
            msg_id="<x@example.org>",
            date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    )
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert "Bcc: victim@example.org" in str(parsed["Subject"])  # kept as text on one line
    assert parsed.get_content_type() == "text/plain"


# --- sending ---------------------------------------------------------------------------------


@pytest.mark.parametrize("smtp", [False, True], ids=["plain", "pipelining"], indirect=True)
def test_send_twice_delivers_each_digest_once(cli: Any, store: str, smtp: SmtpServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_text(smtp.port, ["ada@example.org", "grace@example.org"]))
    first = cli("--config", config, "--db", store, "send")
    assert first.code == 0, first.err
    again = cli("--config", config, "--db", store, "send")
    assert again.code == 0 and "nothing due" in again.out
    received = smtp.handler.by_recipient()
    assert sorted(received) == ["ada@example.org", "grace@example.org"]
    assert all(len(items) == 1 for items in received.values())
    ada = received["ada@example.org"][0].message
    assert "on agents" in str(ada["Subject"])
    text = ada.get_body(preferencelist=("plain",))
    assert text is not None and "AGENTS" in text.get_content()
    assert [row["status"] for row in outbox(store)] == ["sent", "sent"]
    sent = scalar(store, "SELECT count(*) FROM sent_paper WHERE subscriber = 'ada@example.org'")
    assert sent == len(json.loads(outbox(store)[0]["papers"])) > 0


def test_send_in_a_process_of_its_own_ends_without_the_teardown_its_work_whole(
    store: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    """`paperdigest send` (console()) skips the interpreter's teardown (cli.NO_TEARDOWN) but keeps
    the collector, its start-up's objects frozen out of it (cli.FROZEN_START): the digests are
    delivered and recorded, the exit handlers run after the output is flushed, the exit code is
    send's own; the SQLite store is left whole (its engines disposed) and
    a second send finds nothing due. main() called by a host program returns to it, and leaves
    the host's collector as it was (nothing frozen)."""
    config = write_config(tmp_path, config_text(smtp.port, ["ada@example.org", "grace@example.org"]))
    env = dict(os.environ, PAPERDIGEST_NOW=SEND_AT)
    code = (
        "import atexit, gc, sys\n"
        "from paperdigest import cli\n"
        "atexit.register(lambda: print('at exit', gc.isenabled(), gc.get_freeze_count() > 0))\n"
        "hosted = sys.argv[2:] == ['hosted']\n"
        f"sys.argv = ['paperdigest', '--config', {config!r}, '--db', {store!r}, sys.argv[1]]\n"
        "print('hosted', cli.main(sys.argv[1:])) if hosted else cli.console()\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, "send"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split(" for ")[0] for line in lines if line.startswith("sent ")) == [
        "sent ada@example.org", "sent grace@example.org"]
    assert lines[-1] == "at exit True True"  # the handler ran last, the collector on, start-up frozen
    assert "not reached" not in done.stdout
    assert sorted(smtp.handler.by_recipient()) == ["ada@example.org", "grace@example.org"]
    assert [row["status"] for row in outbox(store)] == ["sent", "sent"]
    hosted = subprocess.run([sys.executable, "-c", code, "send", "hosted"], capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert hosted.returncode == 0, hosted.stdout + hosted.stderr
    assert hosted.stdout.splitlines()[-4:] == ["nothing due", "hosted 0", "not reached", "at exit True False"]
    # Under cProfile (benchmarks/bench.py --profile) the process exits as Python does: the profiler
    # writes its figures after the command returns.
    stats = tmp_path / "send.prof"
    profiled = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "paperdigest", "--config",
                               config, "--db", store, "send"], capture_output=True, text=True, env=env, timeout=120,
                              check=False)
    assert profiled.returncode == 0 and profiled.stdout.strip() == "nothing due", profiled.stdout + profiled.stderr
    assert "cmd_send" in str(pstats.Stats(str(stats)).stats)


def test_a_mailed_digest_has_its_html_7bit_and_its_text_quoted_printable(
    cli: Any, store: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    """The shipped template's HTML goes as it is (ASCII, its non-ASCII as character references,
    no line over 998 octets), and reads as the digest: the em dash of its title included."""
    config = write_config(tmp_path, config_text(smtp.port, ["ada@example.org"]))
    assert cli("--config", config, "--db", store, "send").code == 0
    (received,) = smtp.handler.by_recipient()["ada@example.org"]
    assert all(len(line) <= 998 for line in received.data.split(b"\r\n")) and max(received.data) < 128
    html = received.message.get_body(preferencelist=("html",))
    text = received.message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    assert html["Content-Transfer-Encoding"] == "7bit" and text["Content-Transfer-Encoding"] == "quoted-printable"
    content = html.get_content()
    assert "<title>Paper digest &#8212; " in content and "<style>" not in content and "<mark style=" in content
    assert "Paper digest — " in text.get_content()


def test_dry_run_stores_and_sends_nothing(cli: Any, store: str, smtp: SmtpServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_text(smtp.port, ["ada@example.org"]))
    result = cli("--config", config, "--db", store, "send", "--dry-run")
    assert result.code == 0 and "would queue ada@example.org" in result.out
    assert outbox(store) == [] and smtp.handler.received == []


def test_the_next_period_never_repeats_a_paper(
    cli: Any, store: str, smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, config_text(smtp.port, ["ada@example.org"]))
    assert cli("--config", config, "--db", store, "send").code == 0
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-24T09:00:00+00:00")
    result = cli("--config", config, "--db", store, "send")
    assert result.code == 0 and "nothing new: not sent" in result.out  # an empty digest is not sent
    assert len(smtp.handler.received) == 1
    assert [row["status"] for row in outbox(store)] == ["sent", "empty"]


def test_starttls_and_auth(cli: Any, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = SmtpServer(Handler(), tls=server_context, auth=Authenticator("digest", "s3cret-pass")).start()
    try:
        secret = tmp_path / "smtp-password"
        secret.write_text("s3cret-pass\n")
        text = config_text(
            server.port,
            ["ada@example.org"],
            security="starttls",
            username="digest",
            ca_file=ca_file,
            password_file=secret,
        )
        result = cli("--verbose", "--config", write_config(tmp_path, text), "--db", store, "send")
        assert result.code == 0, result.err
        assert len(server.handler.received) == 1
        assert "s3cret-pass" not in result.out + result.err
    finally:
        server.stop()


def test_wrong_password_keeps_the_digest_pending(
    cli: Any, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SmtpServer(Handler(), auth=Authenticator("digest", "right")).start()
    try:
        monkeypatch.setenv("PAPERDIGEST_SMTP_PASSWORD", "wrong-password-value")
        text = config_text(server.port, ["ada@example.org", "grace@example.org"], username="digest")
        result = cli("--verbose", "--config", write_config(tmp_path, text), "--db", store, "send")
        assert result.code == 1
        assert "authentication failed" in result.out and "535" in result.out
        assert "wrong-password-value" not in result.out + result.err
        assert {row["status"] for row in outbox(store)} == {"pending"}
        assert server.handler.received == []
        status = cli("--db", store, "status", "--json").json_lines()[0]
        assert status["mail"]["counts"]["pending"] == 2
    finally:
        server.stop()


@pytest.mark.parametrize("smtp", [False, True], ids=["plain", "pipelining"], indirect=True)
def test_transient_451_retries_with_backoff(
    cli: Any, store: str, smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp.handler.rcpt_replies["ada@example.org"] = "451 4.7.1 greylisted, try later"
    config = write_config(tmp_path, config_text(smtp.port, ["ada@example.org", "grace@example.org"]))
    result = cli("--config", config, "--db", store, "send")
    assert result.code == 1 and "retry ada@example.org" in result.out and "451" in result.out
    assert list(smtp.handler.by_recipient()) == ["grace@example.org"]  # the others go on
    ada = outbox(store)[0]
    assert (ada["status"], ada["attempts"]) == ("pending", 1) and "greylisted" in ada["last_error"]
    again = cli("--config", config, "--db", store, "send")  # too early: backoff not over
    assert again.code == 0 and "nothing due" in again.out
    del smtp.handler.rcpt_replies["ada@example.org"]
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-23T09:01:30+00:00")
    later = cli("--config", config, "--db", store, "send")
    assert later.code == 0 and "sent ada@example.org" in later.out
    assert {k: len(v) for k, v in smtp.handler.by_recipient().items()} == {"ada@example.org": 1, "grace@example.org": 1}


@pytest.mark.parametrize("smtp", [False, True], ids=["plain", "pipelining"], indirect=True)
def test_permanent_550_is_recorded_and_does_not_block_others(
    cli: Any, store: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    smtp.handler.rcpt_replies["ada@example.org"] = "550 5.1.1 no such user here"
    subscribers = ["ada@example.org", "grace@example.org", "linus@example.org"]
    config = write_config(tmp_path, config_text(smtp.port, subscribers))
    result = cli("--config", config, "--db", store, "send")
    assert result.code == 1 and "failed ada@example.org" in result.out
    assert (result.out + result.err).count("no such user here") == 1, result.err  # told once, not logged again
    assert sorted(smtp.handler.by_recipient()) == ["grace@example.org", "linus@example.org"]
    rows = {row["subscriber"]: row for row in outbox(store)}
    assert rows["ada@example.org"]["status"] == "failed"
    assert rows["ada@example.org"]["last_error"] == "550 5.1.1 no such user here"
    status = cli("--db", store, "status")
    assert "1 failed" in status.out and "no such user here" in status.out
    assert status.code == 1  # failing mail makes `status` fail, for monitoring
    assert cli("--config", config, "--db", store, "send").out.strip() == "nothing due"  # failed is final


@pytest.mark.parametrize("smtp", [False, True], ids=["plain", "pipelining"], indirect=True)
def test_data_550_and_421(cli: Any, store: str, smtp: SmtpServer, tmp_path: Path) -> None:
    smtp.handler.data_replies["ada@example.org"] = "550 5.7.1 message refused"
    smtp.handler.data_replies["grace@example.org"] = "421 4.3.2 shutting down"
    config = write_config(
        tmp_path, config_text(smtp.port, ["ada@example.org", "grace@example.org", "linus@example.org"])
    )
    result = cli("--config", config, "--db", store, "send")
    assert result.code == 1
    rows = {row["subscriber"]: row for row in outbox(store)}
    assert rows["ada@example.org"]["status"] == "failed"
    assert rows["grace@example.org"]["status"] == "pending"  # 421: the server is going away, retry later
    assert rows["linus@example.org"]["status"] == "pending"  # the batch stopped at 421, not tried yet
    assert smtp.handler.received == []
    shown = {line.split()[1]: line for line in cli("--db", store, "status").out.splitlines() if "@" in line}
    grace, linus = shown["grace@example.org"], shown["linus@example.org"]
    assert "after 1 attempt," in grace and "421 4.3.2 shutting down" in grace  # one, not "1 attempt(s)"
    assert ": not tried yet" in linus and "attempt" not in linus, linus  # not "after 0 attempt(s): -"


def test_server_down_then_up(cli: Any, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    config = write_config(tmp_path, config_text(port, ["ada@example.org", "grace@example.org"]))
    down = cli("--config", config, "--db", store, "send")
    assert down.code == 1 and "cannot connect" in down.out
    assert {row["status"] for row in outbox(store)} == {"pending"}
    # Every digest left waiting is named, not only the one that met the dead server.
    told = sorted(line.split()[:2] for line in down.out.splitlines() if line.startswith(("retry ", "waiting ")))
    assert [who for _, who in told] == ["ada@example.org", "grace@example.org"], down.out
    assert sorted(what for what, _ in told) == ["retry", "waiting"], down.out
    assert "not tried: the batch stopped at " in down.out
    server = SmtpServer(Handler(), port=port).start()
    try:
        monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-23T09:05:00+00:00")
        up = cli("--config", config, "--db", store, "send")
        assert up.code == 0, up.out
        assert {k: len(v) for k, v in server.handler.by_recipient().items()} == {
            "ada@example.org": 1,
            "grace@example.org": 1,
        }
    finally:
        server.stop()


def test_file_transport_writes_eml_and_html(cli: Any, store: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[mail]\ntransport = "file"\noutbox_dir = "{tmp_path / "out"}"\n[[subscribers]]\nemail = "ada@example.org"\n',
    )
    assert cli("--config", config, "--db", store, "send").code == 0
    assert cli("--config", config, "--db", store, "send").code == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["2026-11-23T0700Z_ada@example.org.eml", "2026-11-23T0700Z_ada@example.org.html"]
    parsed = message_from_bytes((tmp_path / "out" / files[0]).read_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"


# --- a crash in the middle of a batch --------------------------------------------------------


@pytest.mark.parametrize("pipelining", [False, True], ids=["plain", "pipelining"])
def test_sigkill_in_the_middle_of_a_batch_of_50(store: str, tmp_path: Path, pipelining: bool) -> None:
    """Killed after the server took some messages, restarted: everyone gets exactly one digest.

    The only repeat SMTP allows is the message whose 250 reply raced the kill: it is sent again
    with the same Message-ID, so the test counts distinct Message-IDs per recipient and allows
    at most that one repeat, byte-identical.
    """
    subscribers = [f"reader{i:02d}@example.org" for i in range(50)]
    killed = threading.Event()
    handler = Handler(delay=0.01, pipelining=pipelining)
    server = SmtpServer(handler).start()
    config = write_config(tmp_path, config_text(server.port, subscribers))
    env = dict(os.environ, PAPERDIGEST_NOW=SEND_AT, PAPERDIGEST_DB=store, PAPERDIGEST_CONFIG=config)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "paperdigest", "send"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        def kill_at(count: int) -> None:
            if count == 20 and not killed.is_set():
                proc.send_signal(signal.SIGKILL)
                killed.set()

        handler.on_message = kill_at
        proc.communicate(timeout=120)
        assert killed.is_set() and proc.returncode == -signal.SIGKILL
        first_run = len(handler.received)
        assert 20 <= first_run < 50
        handler.on_message = None
        # The killed sender's claims are taken over once its heartbeat is older than the takeover
        # time (30 s): the clock is pinned, so the rerun comes a minute later.
        rerun = subprocess.run(
            [sys.executable, "-m", "paperdigest", "send"],
            cwd=ROOT,
            env=dict(env, PAPERDIGEST_NOW=LATER),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    finally:
        server.stop()
    by_rcpt = handler.by_recipient()
    assert sorted(by_rcpt) == subscribers
    repeats = 0
    for items in by_rcpt.values():
        assert len({item.message["Message-ID"] for item in items}) == 1
        assert len({item.data for item in items}) == 1
        repeats += len(items) - 1
    assert repeats <= 1
    assert [row["status"] for row in outbox(store)] == ["sent"] * 50


def test_papers_ingested_between_two_sends_go_out_exactly_once(
    cli: Any, store: str, smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, config_text(smtp.port, ["ada@example.org"]))
    assert cli("--config", config, "--db", store, "send").code == 0  # Nov 23, 09:00
    late = tmp_path / "late.txt"
    late.write_text(
        "new\n\nSubscribe\n\nDaily Papers\n\nNov 23\n\nA Late Agent Paper\n\nAn agent arrives late."
        "\n\n  • 2 authors\n·\nNov 23 4\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-23T09:30:00+00:00")  # after the send, same period
    assert cli("--db", store, "ingest", str(late)).code == 0
    assert cli("--config", config, "--db", store, "send").out.strip() == "nothing due"
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-24T07:10:00+00:00")
    assert cli("--config", config, "--db", store, "send").code == 0
    subjects = [str(item.message["Subject"]) for item in smtp.handler.received]
    assert len(subjects) == 2 and subjects[1].startswith("Paper digest — 1 new paper on agents")
    second = smtp.handler.received[1].message.get_body(preferencelist=("plain",))
    assert second is not None and "A Late Agent Paper" in second.get_content()


# --- races -----------------------------------------------------------------------------------


def test_an_ingest_in_flight_goes_out_in_the_next_digest(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingest in flight when a digest is built: its papers are in the next digest, never lost."""
    monkeypatch.delenv("PAPERDIGEST_NOW", raising=False)
    engine = open_engine(db_url)
    settings = validate(
        {
            "topics": {"robots": {"keywords": ["robot"]}},
            "subscribers": [{"email": "ada@example.org", "topics": ["robots"], "cron": "* * * * *"}],
        },
        "t",
    )
    stamped = th.Event()

    @event.listens_for(engine, "before_cursor_execute")
    def slow_sightings(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO sighting"):
            stamped.set()  # the papers are written and stamped, not yet committed
            time.sleep(1.5)

    seed = SEEDS / "004_d0e4e6143df38525.txt"
    listing = parse_dump(RawDump(str(seed), seed.read_bytes(), None), dt.date(2026, 11, 4))
    worker = th.Thread(target=apply, args=(engine, listing))
    worker.start()
    assert stamped.wait(10)
    now = dt.datetime.now(dt.UTC)
    planned = digest_job.queue_due(engine, settings, now)  # while the ingest is still open
    worker.join(10)
    later = digest_job.queue_due(engine, settings, now + dt.timedelta(minutes=1))
    assert planned and later
    # Its window ends at the last dump committed: the open ingest's papers go out in the next one
    # (on SQLite the digest's reservation, a write, waits for the ingest's write lock: then they go
    # out in this one). Either way once, and never lost.
    assert planned[0].papers + later[0].papers > 0, "papers of an ingest in flight were lost"
    assert 0 in (planned[0].papers, later[0].papers), "papers went out twice"


class ScriptedTransport:
    """A fake transport for the outbox's bookkeeping: runs `on_send(recipient)` for each message."""

    def __init__(self, on_send: Any) -> None:
        self.on_send = on_send
        self.sent: list[str] = []

    def __enter__(self) -> ScriptedTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, *, sender: str, recipient: str, message: bytes, name: str) -> None:
        self.on_send(recipient)
        self.sent.append(recipient)


def _outbox_setup(cli: Any, store: str, tmp_path: Path, subscribers: list[str]) -> tuple[Any, Any, dt.datetime]:

    config = write_config(tmp_path, config_text(free_port(), subscribers))
    settings = load(Path(config))
    engine = open_engine(store)
    now = dt.datetime.fromisoformat(SEND_AT)
    assert len(digest_job.queue_due(engine, settings, now)) == len(subscribers)
    return settings, engine, now


def test_a_claim_names_a_registered_sender_that_beats_while_it_sends(cli: Any, store: str, tmp_path: Path) -> None:
    """A one-shot sender registers in the replica table as a `sender`, claims rows under that id,
    and leaves the table when done."""

    settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org", "b@example.org", "c@example.org"])
    seen: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

    def look(recipient: str) -> None:
        seen.append(({row["subscriber"]: (row["status"], row["claimed_by"]) for row in outbox(store)},
                     dicts(store, "replica", order_by="id")))  # fmt: skip

    outbox_module.deliver_due(engine, settings, ScriptedTransport(look), now)
    claims, replicas = seen[0]
    (sender,) = replicas
    assert sender["role"] == "sender" and sender["pid"] == os.getpid()
    assert claims["a@example.org"] == ("sending", sender["id"])
    assert {row["status"] for row in outbox(store)} == {"sent"}
    assert dicts(store, "replica") == []  # gone once the batch is done


def test_a_lost_claim_is_not_marked_sent_by_the_loser(cli: Any, store: str, tmp_path: Path) -> None:

    settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org"])

    def taken_over(recipient: str) -> None:
        with connect(store) as conn:
            conn.exec_driver_sql("UPDATE outbox SET claimed_by = 'elsewhere:1'")

    results = outbox_module.deliver_due(engine, settings, ScriptedTransport(taken_over), now)
    assert "claim was lost" in results[0].detail
    (row,) = outbox(store)
    assert (row["status"], row["claimed_by"]) == ("sending", "elsewhere:1")  # the other sender finishes it


def test_an_unexpected_error_leaves_no_claim_behind(cli: Any, store: str, tmp_path: Path) -> None:

    settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org", "b@example.org"])

    def explode(recipient: str) -> None:
        raise UnicodeEncodeError("ascii", recipient, 0, 1, "ordinal not in range(128)")

    results = outbox_module.deliver_due(engine, settings, ScriptedTransport(explode), now)
    assert [r.outcome for r in results] == ["retry", "waiting"] and "UnicodeEncodeError" in results[0].detail
    assert results[1].subscriber == "b@example.org" and "not tried" in results[1].detail  # told, not hidden
    assert [row["status"] for row in outbox(store)] == ["pending", "pending"]  # nothing stuck in `sending`


def test_non_ascii_addresses_are_refused_in_the_config() -> None:

    with pytest.raises(ConfigError, match=r"subscribers\[0\]\.email"):
        validate({"subscribers": [{"email": "jörg@example.de"}]}, "c.toml")


def _replica_seen(store: str, replica_id: str, last_seen: dt.datetime) -> None:
    with connect(store) as conn:
        queries.beat(conn, {"id": replica_id, "host": "h", "pid": 1, "role": "sender",
                            "started_at": last_seen, "last_seen": last_seen})  # fmt: skip


def _claimed(store: str, claims: dict[str, tuple[str, str]]) -> None:
    """Set rows' status and claimer: subscriber -> (status, claimed_by)."""
    stamp = dt.datetime(2026, 11, 23, 8, 59, tzinfo=dt.UTC)
    with connect(store) as conn:
        for subscriber, (status, claim) in claims.items():
            conn.execute(
                update(outbox_table)
                .where(outbox_table.c.subscriber == subscriber)
                .values(status=status, sent_at=stamp, claimed_at=stamp, claimed_by=claim)
            )


def test_a_claim_is_taken_over_only_when_its_holders_heartbeat_is_stale(
    cli: Any, store: str, tmp_path: Path
) -> None:
    """Rows `sending` under a live replica's claim are left alone; under a replica whose heartbeat
    is older than the takeover time (30 s by default), or whose row is gone, they are sent."""
    subscribers = ["live@example.org", "stale@example.org", "gone@example.org"]
    settings, engine, now = _outbox_setup(cli, store, tmp_path, subscribers)
    _replica_seen(store, "live-one", now - dt.timedelta(seconds=5))
    _replica_seen(store, "stale-one", now - dt.timedelta(seconds=31))
    _claimed(store, {"live@example.org": ("sending", "live-one"), "stale@example.org": ("sending", "stale-one"),
                     "gone@example.org": ("sending", "nobody-registered")})  # fmt: skip
    transport = ScriptedTransport(lambda _: None)
    results = outbox_module.deliver_due(engine, settings, transport, now)
    assert sorted(transport.sent) == ["gone@example.org", "stale@example.org"]
    assert [r.outcome for r in results] == ["sent", "sent"]
    by = {row["subscriber"]: (row["status"], row["claimed_by"]) for row in outbox(store)}
    assert by["live@example.org"] == ("sending", "live-one")
    _replica_seen(store, "live-one", now - dt.timedelta(seconds=31))  # its heartbeat stops
    outbox_module.deliver_due(engine, settings, transport, now)
    assert sorted(transport.sent) == ["gone@example.org", "live@example.org", "stale@example.org"]
    assert {row["status"] for row in outbox(store)} == {"sent"}


def _claim_all(url: str, me: str, now: dt.datetime, got: list[int], start: th.Barrier) -> None:
    engine = open_engine(url)
    replica = Replica(engine, "sender", dt.timedelta(seconds=30))
    replica.id = me
    replica.beat()
    start.wait()
    with engine.connect().execution_options(write=True) as conn:
        while True:
            with conn.begin():
                rows = queries.claim_due(conn, me, now, now - dt.timedelta(seconds=30), 2, now)
            if not rows:
                break
            got.extend(row.id for row in rows)
    engine.dispose()


def test_two_claimers_never_get_the_same_row(cli: Any, store: str, tmp_path: Path) -> None:
    """Four claimers, each on its own connection, claim two rows at a time until none is left:
    every row is claimed exactly once (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: its write lock)."""
    subscribers = [f"r{i:02d}@example.org" for i in range(40)]
    _settings, engine, now = _outbox_setup(cli, store, tmp_path, subscribers)
    engine.dispose()
    claimed: dict[str, list[int]] = {f"claimer-{i}": [] for i in range(4)}
    start = th.Barrier(len(claimed))
    workers = [th.Thread(target=_claim_all, args=(store, me, now, got, start)) for me, got in claimed.items()]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    every = [row_id for got in claimed.values() for row_id in got]
    assert sorted(every) == sorted(row["id"] for row in outbox(store))  # each row once, none left
    owners = {row["id"]: row["claimed_by"] for row in outbox(store)}
    assert all(owners[row_id] == me for me, got in claimed.items() for row_id in got)


@pytest.mark.postgresql_only  # SQLite's claimers wait for its write lock instead
def test_a_claim_in_flight_is_skipped_not_waited_for(cli: Any, store: str, tmp_path: Path) -> None:
    """While one transaction is claiming rows (not committed), another claims the others at once:
    SKIP LOCKED (a lock_timeout makes a wait fail instead of hanging)."""
    _settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org", "b@example.org", "c@example.org"])
    since = now - dt.timedelta(seconds=30)
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        mine = queries.claim_due(first, "first", now, since, 2, now)
        second.begin()
        second.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
        theirs = queries.claim_due(second, "second", now, since, 10, now)
        second.commit()
        first.commit()
    assert len(mine) == 2 and len(theirs) == 1
    assert {row.id for row in mine}.isdisjoint(row.id for row in theirs)


def test_a_live_builders_reservation_is_left_a_dead_ones_is_built(
    cli: Any, store: str, tmp_path: Path
) -> None:
    """A (subscriber, period) row is reserved (`building`) before its digest is rendered: another
    process skips it while the builder's heartbeat is fresh and builds it once the builder is gone."""
    settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org", "b@example.org"])
    with connect(store) as conn:  # as if two builders had reserved these periods and not filled them
        conn.exec_driver_sql("DELETE FROM outbox_message")
        conn.exec_driver_sql("DELETE FROM outbox")
    period = digest_job.current_period(settings.subscribers[0], now)
    assert period is not None
    _replica_seen(store, "builder-live", now)
    _replica_seen(store, "builder-dead", now - dt.timedelta(minutes=5))
    for subscriber, me in (("a@example.org", "builder-live"), ("b@example.org", "builder-dead")):
        reserved = Replica(engine, "sender", dt.timedelta(seconds=30))
        reserved.id = me
        assert len(outbox_module.reserve(engine, [(subscriber, period)], reserved, now)) == 1
    assert [row["status"] for row in outbox(store)] == ["building", "building"]
    planned = digest_job.queue_due(engine, settings, now)
    assert [item.subscriber for item in planned] == ["b@example.org"]
    by = {row["subscriber"]: row for row in outbox(store)}
    assert (by["a@example.org"]["status"], by["a@example.org"]["claimed_by"]) == ("building", "builder-live")
    assert by["b@example.org"]["status"] == "pending" and by["b@example.org"]["claimed_by"] is None
    assert by["b@example.org"]["message_id"]
    assert scalar(store, "SELECT count(*) FROM outbox_message") == 1


def test_a_batch_reservation_returns_exactly_the_rows_it_took(cli: Any, store: str, tmp_path: Path) -> None:
    """One INSERT reserves a batch: the pairs it returns are the new rows, with their ids; a row
    already finished (pending) or reserved by a live builder is not among them."""
    settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org"])  # a: pending
    period = digest_job.current_period(settings.subscribers[0], now)
    assert period is not None
    _replica_seen(store, "builder-live", now)
    _replica_seen(store, "me", now)
    live, me = Replica(engine, "sender", dt.timedelta(seconds=30)), Replica(engine, "sender", dt.timedelta(seconds=30))
    live.id, me.id = "builder-live", "me"
    assert list(outbox_module.reserve(engine, [("b@example.org", period)], live, now)) == [("b@example.org", period)]
    pairs = [(f"{name}@example.org", period) for name in ("A", "b", "c", "d")]
    got = outbox_module.reserve(engine, pairs, me, now)
    assert sorted(got) == [("c@example.org", period), ("d@example.org", period)]
    by = {row["subscriber"]: row for row in outbox(store)}
    for subscriber in ("c@example.org", "d@example.org"):
        row = by[subscriber]
        assert (row["id"], row["status"], row["claimed_by"]) == (got[(subscriber, period)], "building", "me")
    assert (by["b@example.org"]["status"], by["b@example.org"]["claimed_by"]) == ("building", "builder-live")
    assert by["a@example.org"]["status"] == "pending"
    b_id = by["b@example.org"]["id"]  # live's: in a batch of me's, only me's reservation is filled
    c_id = got[("c@example.org", period)]
    batch = [(b_id, {"subject": "b"}, b"message b"), (c_id, {"subject": "c"}, b"message c")]
    kept = outbox_module.fill(engine, me, batch)
    assert kept == [False, True] and scalar(store, "SELECT count(*) FROM outbox_message") == 2  # a's and c's
    assert {row["subscriber"]: row["subject"] for row in outbox(store)}["b@example.org"] == ""
    stolen = outbox_module.fill(engine, live, [(got[("d@example.org", period)], {"subject": "d"}, b"message d")])
    assert stolen == [False] and scalar(store, "SELECT count(*) FROM outbox_message") == 2  # not live's to fill


def test_a_batch_is_recorded_sent_in_one_update_only_for_rows_still_accepted(
    cli: Any, store: str, tmp_path: Path
) -> None:
    """finish_accepted_many marks a batch's accepted rows sent and records their papers; a row
    another run finished first (already sent) or not accepted (pending) is left as it is, and
    nothing is recorded for it."""
    _settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org", "b@example.org", "c@example.org"])
    by = {row["subscriber"]: row for row in outbox(store)}
    ids = {name: by[f"{name}@example.org"]["id"] for name in "abc"}
    with engine.begin() as conn:
        conn.execute(update(outbox_table).where(outbox_table.c.id.in_([ids["a"], ids["b"]])).values(status="accepted"))
        assert queries.finish_accepted(conn, ids["b"], "b@example.org", {1: 5}, now)  # another run finished b
    shown = {name: {int(pid): votes for pid, votes in json.loads(by[f"{name}@example.org"]["papers"]).items()}
             for name in "abc"}  # fmt: skip
    assert shown["a"] and shown["c"]
    with engine.begin() as conn:
        done = queries.finish_accepted_many(
            conn, [(ids[name], f"{name.upper()}@example.org", shown[name]) for name in "abc"], now
        )
    engine.dispose()
    assert done == {ids["a"]}
    assert [row["status"] for row in outbox(store)] == ["sent", "sent", "pending"]
    recorded = dict(rows(store, "SELECT subscriber, count(*) FROM sent_paper GROUP BY subscriber"))
    assert recorded == {"a@example.org": len(shown["a"]), "b@example.org": 1}


# --- the window SMTP leaves: between the server's 250 and our record of it -------------------


def _deliver_two(engine: Any, settings: Any, now: dt.datetime, on_250: Any, store: str) -> None:
    """Deliver two digests through a transport that calls `on_250(recipient)` as the server answers."""

    class Accepting(ScriptedTransport):
        def send(self, *, sender: str, recipient: str, message: bytes, name: str) -> None:
            super().send(sender=sender, recipient=recipient, message=message, name=name)
            on_250(recipient)

    results = outbox_module.deliver_due(engine, settings, Accepting(lambda _: None), now)
    engine.dispose()
    assert [r.outcome for r in results] == ["sent", "sent"]
    assert [row["status"] for row in outbox(store)] == ["sent", "sent"]
    recorded = rows(store, "SELECT subscriber, count(*) FROM sent_paper GROUP BY subscriber")
    assert dict(recorded) == {row["subscriber"]: len(json.loads(row["papers"])) for row in outbox(store)}


@pytest.mark.sqlite_only  # SQLite's own trace; the PostgreSQL test below reads libpq's
def test_nothing_but_one_update_runs_between_the_250_and_its_commit(cli: Any, store: str, tmp_path: Path) -> None:
    """The repeat window SMTP leaves is ours only between the server's 250 and the commit that
    records it: that commit must be the first thing that runs, one UPDATE committed on its own
    (a single autocommitted statement); the sent papers are recorded after. Seen by SQLite's own
    trace of every statement (BEGIN and COMMIT count too) from the moment the transport returned
    until a second connection sees the row committed."""
    settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org", "b@example.org"])
    engine.dispose()  # every connection from here on is traced
    watcher = sqlite3.connect(store.removeprefix("sqlite:///"))
    windows: list[list[str]] = []
    in_flight: list[str] = []  # the recipient whose 250 came and whose mark is not committed yet

    def committed(recipient: str) -> bool:
        sql = "SELECT status FROM outbox WHERE subscriber = ?"
        return watcher.execute(sql, (recipient,)).fetchone()[0] not in ("pending", "sending")

    def trace(statement: str) -> None:
        if in_flight and committed(in_flight[0]):
            in_flight.clear()
        if in_flight:
            windows[-1].append(" ".join(statement.split()))

    @event.listens_for(engine, "connect")
    def traced(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(trace)

    def accepted(recipient: str) -> None:
        windows.append([])
        in_flight[:] = [recipient]

    try:
        _deliver_two(engine, settings, now, accepted, store)
    finally:
        watcher.close()
    assert len(windows) == 2
    for statements in windows:
        assert len(statements) == 1, statements
        assert statements[0].startswith("UPDATE outbox SET status = 'accepted'"), statements


@pytest.mark.postgresql_only  # libpq's trace; the SQLite test above reads SQLite's
def test_on_postgresql_the_250_is_followed_by_one_autocommitted_update(cli: Any, store: str, tmp_path: Path) -> None:
    """The same window on PostgreSQL, read from libpq's trace of what the client sent: after the
    claim's COMMIT (nothing runs while the message goes out) the first statement is the UPDATE that
    marks the row accepted, with no BEGIN before it, and the server is idle (committed) after it."""
    settings, db, now = _outbox_setup(cli, store, tmp_path, ["a@example.org", "b@example.org"])
    db.dispose()  # every connection from here on is traced
    trace = tmp_path / "libpq.trace"
    fd = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    @event.listens_for(db, "connect")
    def traced(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.pgconn.trace(fd)
        dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    try:
        _deliver_two(db, settings, now, lambda _: None, store)
    finally:
        os.close(fd)
    # Each message: F (from us) or B (from the server), its length, its type, its content.
    pattern = re.compile(r"^([FB])\t\d+\t(\w+)\t?(.*?)(?=^[FB]\t|\Z)", re.MULTILINE | re.DOTALL)
    messages = [(m[1], m[2], " ".join(m[3].split())) for m in pattern.finditer(trace.read_text(errors="replace"))]
    statements = ("Query", "Parse")
    sent = [(at, kind, text) for at, (side, kind, text) in enumerate(messages) if side == "F" and kind in statements]
    marks = [i for i, (_, _, text) in enumerate(sent) if "SET status = 'accepted'" in text]
    assert len(marks) == 2, sent
    for i in marks:
        # Before it: the claim's COMMIT, or the previous row's mark; then the message went out.
        assert sent[i - 1][1:] == ("Query", '"COMMIT"') or "SET status = 'accepted'" in sent[i - 1][2], sent[i - 1]
        at = sent[i][0]
        ready = next(text for side, kind, text in messages[at:] if side == "B" and kind == "ReadyForQuery")
        assert ready == "I"  # idle, not in a transaction: the UPDATE committed by itself


_KILLED_BEFORE_THE_PAPERS = """
import os, signal, sys
from sqlalchemy import Engine, event

@event.listens_for(Engine, "before_cursor_execute")
def die(conn, cursor, statement, *args):
    if statement.startswith("INSERT INTO sent_paper"):
        os.kill(os.getpid(), signal.SIGKILL)

from paperdigest.cli import main
sys.exit(main(["send"]))
"""


def test_a_sender_killed_between_the_mark_and_the_papers_leaves_them_to_the_next_run(
    cli: Any, store: str, smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL after the server's 250 is committed and before the papers are recorded: nothing is
    sent again, and the next run records the papers."""
    subscribers = ["ada@example.org", "grace@example.org", "alan@example.org"]
    config = write_config(tmp_path, config_text(smtp.port, subscribers))
    env = dict(os.environ, PAPERDIGEST_NOW=SEND_AT, PAPERDIGEST_DB=store, PAPERDIGEST_CONFIG=config)
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_BEFORE_THE_PAPERS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Its batch went out, each row marked accepted at its 250; the papers are recorded per batch.
    assert [item.recipients for item in smtp.handler.received] == [[s] for s in subscribers]
    assert [row["status"] for row in outbox(store)] == ["accepted"] * 3
    assert scalar(store, "SELECT count(*) FROM sent_paper") == 0
    status = cli("--config", config, "--db", store, "status", "--json")
    assert json.loads(status.out)["mail"]["counts"]["accepted"] == 3

    monkeypatch.setenv("PAPERDIGEST_NOW", LATER)  # past the killed sender's takeover time
    again = cli("--config", config, "--db", store, "send")
    assert again.code == 0, again.out + again.err
    received = smtp.handler.by_recipient()
    assert sorted(received) == sorted(subscribers)
    assert all(len(items) == 1 for items in received.values())  # nothing sent twice
    settled = outbox(store)
    assert [row["status"] for row in settled] == ["sent"] * 3
    assert all(row["claimed_by"] is None for row in settled)
    for row in settled:
        sql = "SELECT paper_id FROM sent_paper WHERE subscriber = :subscriber"
        recorded = {pid for (pid,) in rows(store, sql, subscriber=row["subscriber"])}
        assert recorded == {int(pid) for pid in json.loads(row["papers"])}, row["subscriber"]


def test_only_a_stopped_senders_accepted_rows_are_finished_by_another_run(cli: Any, store: str, tmp_path: Path) -> None:
    """A row another live sender has just marked accepted is left to it; a dead sender's is finished."""

    settings, engine, now = _outbox_setup(cli, store, tmp_path, ["a@example.org", "b@example.org"])
    _replica_seen(store, "live-sender", now)
    _replica_seen(store, "dead-sender", now - dt.timedelta(minutes=1))
    _claimed(store, {"a@example.org": ("accepted", "dead-sender"), "b@example.org": ("accepted", "live-sender")})
    assert outbox_module.record_accepted(engine, now, settings) == 1
    assert [(row["subscriber"], row["status"]) for row in outbox(store)] == [
        ("a@example.org", "sent"),
        ("b@example.org", "accepted"),
    ]
    assert rows(store, "SELECT DISTINCT subscriber FROM sent_paper") == [("a@example.org",)]
    with connect(store) as conn:
        conn.execute(replica_table.delete().where(replica_table.c.id == "live-sender"))  # it stopped
    assert outbox_module.record_accepted(engine, now, settings) == 1
    assert [row["status"] for row in outbox(store)] == ["sent", "sent"]


def test_the_mark_waits_for_a_writer_that_holds_the_store(
    cli: Any, store: str, tmp_path: Path, engine_name: str
) -> None:
    """The autocommitted mark waits like any transaction: another writer holding the store (SQLite's
    write lock; on PostgreSQL a lock on the outbox) when the 250 comes delays the mark, it does not
    fail it (SQLite: the busy timeout)."""
    settings, db, now = _outbox_setup(cli, store, tmp_path, ["a@example.org"])
    threads = {"check_same_thread": False} if engine_name == "sqlite" else {}
    holder = create_engine(store, poolclass=NullPool, connect_args=threads).connect()
    release = threading.Timer(0.5, holder.commit)

    def hold_the_store(recipient: str) -> None:
        if engine_name == "sqlite":
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            holder.exec_driver_sql("LOCK TABLE outbox IN EXCLUSIVE MODE")
        release.start()

    started = time.monotonic()
    results = outbox_module.deliver_due(db, settings, ScriptedTransport(hold_the_store), now)
    release.join()
    holder.close()
    assert [r.outcome for r in results] == ["sent"]
    assert time.monotonic() - started >= 0.4
    assert [row["status"] for row in outbox(store)] == ["sent"]
