"""`status` tells the truth: rejected dumps, failing mail counted from when it failed, times with zones."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from paperdigest.config import validate
from paperdigest.ingest import reject
from paperdigest.ingest.job import poll_source
from paperdigest.service import health
from paperdigest.sources.directory import DirectorySource
from paperdigest.sources.files import Pending
from paperdigest.store.engine import open_engine
from tests.conftest import ROOT, SEED_AS_OF, SEEDS
from tests.privileges import without_root_override
from tests.smtp_server import Handler, SmtpServer
from tests.storehelp import insert

SEED = SEEDS / "004_d0e4e6143df38525.txt"
GARBAGE = b"\x00\x01\x02 not a listing"


def settled(path: Path, data: bytes, old: float | None = None) -> Path:
    """A finished file: written, then dated in the past (a minute ago, or `old`)."""
    path.write_bytes(data)
    old = old if old is not None else time.time() - 60
    os.utime(path, (old, old))
    return path


def inbox_config(tmp_path: Path, inbox: Path, mail: str = "") -> str:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[[sources]]\nname = "inbox"\nkind = "directory"\npath = "{inbox}"\nevery = "1m"\n'
        '[topics.agents]\nkeywords = ["agent"]\n'
        + (mail or f'[mail]\ntransport = "file"\noutbox_dir = "{tmp_path / "out"}"\n')
        + '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["agents"]\ncron = "0 7 * * *"\n',
        encoding="utf-8",
    )
    return str(path)


def status(cli: Any, *args: str) -> tuple[int, dict[str, Any], str]:
    as_json = cli(*args, "status", "--json")
    text = cli(*args, "status")
    assert as_json.code == text.code
    return as_json.code, as_json.json_lines()[0], text.out


# --- a rejected dump is not silence ---------------------------------------------------------------


def test_a_dump_rejected_in_the_inbox_turns_status_unhealthy_until_a_newer_good_one(
    cli: Any, tmp_path: Path, db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config, db = inbox_config(tmp_path, inbox), db_url
    settled(inbox / "2026-11-20_bad.txt", GARBAGE)
    assert cli("--config", config, "--db", db, "run", "--once").code == 2

    code, report, text = status(cli, "--config", config, "--db", db)
    assert code == 1 and report["healthy"] is False
    (rejected,) = report["rejected"]
    assert rejected["source"] == "inbox" and rejected["file"] == "2026-11-20_bad.txt"
    assert rejected["as_of"] == "2026-11-20" and "binary" in rejected["reason"]
    assert dt.datetime.fromisoformat(rejected["rejected_at"]).tzinfo is not None
    assert "health: UNHEALTHY" in text and "2026-11-20_bad.txt" in text and "binary" in text

    # An older good dump does not settle it; one captured that day or later, ingested after, does.
    settled(inbox / "2026-11-19_old.txt", SEED.read_bytes())
    assert cli("--config", config, "--db", db, "run", "--once").code == 0
    assert status(cli, "--config", config, "--db", db)[0] == 1
    settled(inbox / "2026-11-20_fixed.txt", SEEDS.joinpath("002_35bc1272005cc0d3.txt").read_bytes())  # same day
    assert cli("--config", config, "--db", db, "run", "--once").code == 0
    code, report, text = status(cli, "--config", config, "--db", db)
    assert code == 0 and report["rejected"] == [] and "health: ok" in text


def test_a_rejection_older_than_a_week_no_longer_counts(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config, db = inbox_config(tmp_path, inbox), db_url
    settled(inbox / "2026-11-20_bad.txt", GARBAGE, dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC).timestamp())
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-20T10:00:00+00:00")
    cli("--config", config, "--db", db, "run", "--once")
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-27T09:59:00+00:00")
    assert status(cli, "--config", config, "--db", db)[0] == 1
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-27T10:01:00+00:00")
    code, report, _ = status(cli, "--config", config, "--db", db)
    assert code == 0 and report["rejected"] == []


def test_dumps_rejected_by_ingest_and_backfill_are_listed(cli: Any, tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "dumps"
    folder.mkdir()
    shutil.copyfile(SEED, folder / "2026-11-04_good.txt")
    settled(folder / "2026-11-05_broken.txt", GARBAGE)
    backfill = cli("--db", db_url, "backfill", str(folder))
    assert backfill.code == 2
    # Reported once (on stderr as it happens), not again in the summary on stdout, which says how
    # long `status` lists it (a trial read "status lists them" and found it settled already).
    assert (backfill.out + backfill.err).count("2026-11-05_broken.txt") == 1
    told = " ".join(backfill.out.split())  # the summary wraps at the terminal's width
    assert "lists each until a newer good dump from its folder is stored (this backfill's newer dumps count)" in told
    code, report, _ = status(cli, "--db", db_url)
    assert code == 1 and [r["file"] for r in report["rejected"]] == [str(folder / "2026-11-05_broken.txt")]
    assert report["rejected"][0]["source"] == str(folder)

    lone = tmp_path / "elsewhere"
    lone.mkdir()
    settled(lone / "2026-11-06_cut.txt", b"\x00\x03 other junk")
    assert cli("--db", db_url, "ingest", str(lone / "2026-11-06_cut.txt")).code == 2
    code, report, _ = status(cli, "--db", db_url)
    assert code == 1 and len(report["rejected"]) == 2

    # The same bad file again updates its row; a newer good dump from the folder settles it.
    assert cli("--db", db_url, "backfill", str(folder)).code == 2
    assert len(status(cli, "--db", db_url)[1]["rejected"]) == 2
    shutil.copyfile(SEEDS / "002_35bc1272005cc0d3.txt", folder / "2026-11-07_good.txt")
    assert cli("--db", db_url, "backfill", str(folder)).code == 2  # the broken one is still there
    assert [r["file"] for r in status(cli, "--db", db_url)[1]["rejected"]] == [str(lone / "2026-11-06_cut.txt")]


def test_a_dry_run_records_nothing(cli: Any, tmp_path: Path, db_url: str) -> None:
    bad = settled(tmp_path / "2026-11-05_broken.txt", GARBAGE)
    assert cli("--db", db_url, "ingest", "--dry-run", str(bad)).code == 2
    assert status(cli, "--db", db_url)[0] == 0


def test_a_read_only_source_rejects_a_bad_file_once(tmp_path: Path, db_url: str) -> None:
    """seeds/-like folders keep their files: a bad one is not re-parsed and re-recorded every poll."""
    engine = open_engine(db_url)
    folder = tmp_path / "ro"
    folder.mkdir()
    settled(folder / "bad.txt", GARBAGE)
    source = DirectorySource("ro", folder, move=False)

    first = poll_source(engine, source, dt.datetime.now(dt.UTC))
    assert [r.file for r in first.rejected] == ["bad.txt"]
    reject(engine, first.rejected[0])
    assert poll_source(engine, source, dt.datetime.now(dt.UTC)).rejected == []
    assert (folder / "bad.txt").exists()


def test_run_once_with_a_rejected_dump_and_a_failure_exits_1(cli: Any, tmp_path: Path, db_url: str) -> None:
    """Documented: a runtime failure (1) wins over a rejected dump (2); the rejection stays in status."""
    server = SmtpServer(Handler()).start()
    port = server.port
    server.stop()  # nothing listens there now: mail fails
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    mail = (
        f'[mail]\nfrom = "Digest <d@example.org>"\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
        'security = "none"\ntimeout = 5\n'
    )
    config, db = inbox_config(tmp_path, inbox, mail), db_url
    settled(inbox / "2026-11-20_bad.txt", GARBAGE)
    settled(inbox / "2026-11-19_good.txt", SEED.read_bytes())
    result = cli("--config", config, "--db", db, "run", "--once")
    assert result.code == 1
    assert "rejected 2026-11-20_bad.txt" in result.out and "cannot connect" in result.out
    assert status(cli, "--config", config, "--db", db)[1]["rejected"][0]["file"] == "2026-11-20_bad.txt"


# --- one unreadable file is that file's problem ----------------------------------------------------


def test_an_unreadable_file_does_not_stop_the_inbox_or_a_backfill(tmp_path: Path, db_url: str) -> None:


    work = tmp_path / "work"
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    settled(inbox / "2026-11-03_first.txt", SEEDS.joinpath("002_35bc1272005cc0d3.txt").read_bytes())
    locked = settled(inbox / "2026-11-04_locked.txt", SEED.read_bytes())
    settled(inbox / "2026-11-05_last.txt", SEEDS.joinpath("003_00886173680504fb.txt").read_bytes())
    locked.chmod(0)
    env = dict(os.environ, STATE_DIRECTORY=str(work / "state"), HOME=str(work))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "paperdigest", "--db", db_url, *args]
        return subprocess.run(
            without_root_override(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    backfill = run("backfill", str(inbox), "--json")
    assert backfill.returncode == 2, backfill.stderr
    assert [json.loads(line)["as_of"] for line in backfill.stdout.splitlines()] == ["2026-11-03", "2026-11-05"]
    assert "2026-11-04_locked.txt" in backfill.stderr and "cannot read" in backfill.stderr

    config = work / "c.toml"
    config.write_text(f'[[sources]]\nname = "inbox"\nkind = "directory"\npath = "{inbox}"\n', encoding="utf-8")
    polled = run("--config", str(config), "run", "--once")
    assert polled.returncode == 2, polled.stdout + polled.stderr
    assert "rejected 2026-11-04_locked.txt" in polled.stdout
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["2026-11-03_first.txt", "2026-11-05_last.txt"]
    assert (inbox / "rejected" / "2026-11-04_locked.txt").exists()  # moved aside, not retried every poll
    assert "cannot read" in (inbox / "rejected" / "2026-11-04_locked.txt.error").read_text()
    shown = run("--config", str(config), "status", "--json")
    assert shown.returncode == 1
    assert [r["file"] for r in json.loads(shown.stdout)["rejected"]] == ["2026-11-04_locked.txt"]


def test_a_file_that_vanishes_before_it_is_read_is_skipped(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = DirectorySource("inbox", inbox)
    assert source._read(Pending(inbox / "gone.txt", dt.date(2026, 11, 4))) is None  # not refused: gone


# --- mail -------------------------------------------------------------------------------------------


def outbox_row(url: str, email: str, period: str, status: str, **values: Any) -> None:
    """An outbox row; times as ISO text in UTC ("2026-01-01 07:00")."""
    moment = at(period)
    row = {
        "subscriber": email,
        "period": moment,
        "window_start": moment,
        "window_end": moment,
        "created_at": moment,
        "status": status,
        "attempts": 1,
        "next_attempt_at": moment,
        "message_id": f"<{email}.{period}@x>",
        "subject": "s",
        "papers": "{}",
        **values,
    }
    insert(url, "outbox", row)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_mail_that_failed_a_minute_ago_is_unhealthy_whatever_its_period(
    cli: Any, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A yearly digest refused with a 550 just now: its period is months old, the failure is not."""
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-12-01T12:00:00+00:00")
    assert cli("--db", db_url, "db", "upgrade").code == 0  # `status` looks at a store, and creates none
    assert status(cli, "--db", db_url)[0] == 0
    failed = {"claimed_at": at("2026-12-01 11:59"), "last_error": "550 no such user"}
    outbox_row(db_url, "yearly@x.org", "2026-01-01 07:00", "failed", **failed)
    code, report, text = status(cli, "--db", db_url)
    assert code == 1 and report["mail"]["failed_last_7_days"] == 1 and report["mail"]["healthy"] is False
    assert "550 no such user" in text
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-12-08T12:00:00+00:00")  # a week after it failed
    assert status(cli, "--db", db_url)[0] == 0


def test_mail_that_needs_attention_is_listed_first(cli: Any, tmp_path: Path, db_url: str) -> None:
    assert cli("--db", db_url, "db", "upgrade").code == 0  # `status` looks at a store, and creates none
    assert status(cli, "--db", db_url)[0] == 0
    for i in range(25):  # newer digests, waiting for their first try
        outbox_row(db_url, f"new{i}@x.org", f"2026-11-{i + 2:02d} 07:00", "pending", attempts=0)
    outbox_row(db_url, "old@x.org", "2026-10-01 07:00", "pending", last_error="451 try later")
    outbox_row(db_url, "gone@x.org", "2026-09-01 07:00", "failed", last_error="550 no such user")
    attention = status(cli, "--db", db_url)[1]["mail"]["attention"]
    assert [m["subscriber"] for m in attention[:2]] == ["old@x.org", "gone@x.org"]
    assert len(attention) == 20


# --- times say their zone -------------------------------------------------------------------------

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


def times_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in times_in(v)]
    if isinstance(value, list):
        return [t for v in value for t in times_in(v)]
    return [value] if isinstance(value, str) and TIME.match(value) else []


def test_every_time_in_status_carries_its_zone(cli: Any, tmp_path: Path, db_url: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config, db = inbox_config(tmp_path, inbox), db_url
    settled(inbox / "2026-11-20_bad.txt", GARBAGE)
    for name, as_of in SEED_AS_OF.items():
        settled(inbox / f"{as_of}_{name}", SEEDS.joinpath(name).read_bytes())
    cli("--config", config, "--db", db, "run", "--once")
    code, report, text = status(cli, "--config", config, "--db", db)
    assert code == 1  # the rejected dump
    moments = times_in(report)
    assert len(moments) >= 8  # ingested_at of each dump, the source, the rejection, the next runs
    assert all(dt.datetime.fromisoformat(m).utcoffset() is not None for m in moments), moments
    shown = re.findall(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d\S*", text)
    assert shown and all(s.endswith("Z") for s in shown), shown


def test_the_status_report_is_one_library_call(tmp_path: Path, db_url: str) -> None:
    settings = validate({}, "test")
    engine = open_engine(db_url)
    report = health.status_report(settings, engine, db_url, dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 5)
    assert report["healthy"] is True and report["papers"] == 0 and report["rejected"] == []


def test_status_lists_the_soonest_five_digests_and_counts_the_rest(cli: Any, tmp_path: Path, db_url: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = inbox_config(tmp_path, inbox)  # ada, at 07:00
    for hour in range(8, 15):  # seven more in the store, one an hour later each
        added = cli("--config", config, "--db", db_url, "subscribers", "add", f"s{hour}@example.org",
                    "--topics", "agents", "--cron", f"0 {hour} * * *")
        assert added.code == 0, added.err
    _code, report, text = status(cli, "--config", config, "--db", db_url)
    digests = [job for job in report["next_runs"] if job["job"].startswith("digest:")]
    assert len(digests) == 8  # --json: every subscriber, the config's and the store's
    shown = re.findall(r"^next digest:(\S+):", text, re.MULTILINE)
    assert shown == [job["job"].removeprefix("digest:") for job in digests[:5]]
    assert re.search(r"^  and 3 more digests by \d{4}-\d\d-\d\d \d\d:\d\dZ \(status --json lists them all\)$",
                     text, re.MULTILINE), text
