"""Kill loop: how often a SIGKILL in the middle of delivery makes a digest arrive twice, and where.

    python benchmarks/kill_loop.py                 # 100 kills of `send`, 50 of `run --once`, smtp-sink
    python benchmarks/kill_loop.py --quick         # 20 + 10 kills, 100 subscribers (~1.5 min)
    python benchmarks/kill_loop.py --kills 200 --once-kills 0 --json
    python benchmarks/kill_loop.py --sink aiosmtpd # bench_mail's aiosmtpd sink instead of smtp-sink

Each kill: a fresh copy of a store in which N personalised digests are due (bench_mail's seeds and
subscribers), the command started as a subprocess against a local SMTP sink, SIGKILLed at a
uniformly random moment of its delivery batch, then the same command run again to finish. The
sink records each message's Message-ID: a Message-ID that arrived twice is a repeat. Where each
kill landed comes from the store (which row was claimed) and from a probe in smtplib
(kill_probe.py) that counts, in a shared memory page, the messages whose final "." went to the
kernel and the 250 replies read back. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import mmap
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import bench_mail
import kill_probe
import smtp_sink

HERE = Path(__file__).resolve().parent
SEND_AT = bench_mail.SEND_AT.isoformat()
FINISH_AT = (bench_mail.SEND_AT + dt.timedelta(minutes=2)).isoformat()  # past the default takeover, same period
COMMANDS = {"send": ["send"], "run --once": ["run", "--once"]}
CALIBRATION_RUNS = 3  # the shortest batch of three sets the range of the kill times

# Where a kill landed, inside a batch. A repeat is expected exactly for the first two.
SERVER = "server's part"  # the message's final "." was handed to the kernel, its 250 not read yet
OURS = "our window"  # the 250 was read, the row not yet committed as taken by the server
CLAIMING = "claiming"  # a row claimed, its MAIL command not begun
SENDING = "sending"  # MAIL, RCPT, DATA or the body under way: the server drops an unfinished message
BETWEEN = "between messages"  # the row committed; bookkeeping, or the next claim not committed yet
PLACES = (SERVER, OURS, CLAIMING, SENDING, BETWEEN)


# ---------------------------------------------------------------------------------------- sinks


class Sink(Protocol):
    port: int
    version: str

    def count(self) -> int: ...

    def take_ids(self, messages: dict[str, bytes]) -> tuple[dict[str, int], int]: ...

    def stop(self) -> None: ...


class SmtpSinkServer:
    """Postfix's smtp-sink (C, event-driven), dumping each message to its own file. The dumps go to
    a tmpfs when there is one, so that storing a message costs the server as little as it can."""

    def __init__(self, binary: str, dump_root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kill-loop-sink-", dir=dump_root))
        self.dir.chmod(0o777)  # started as root, smtp-sink runs as nobody
        self.sink = smtp_sink.SmtpSink(binary, dump_dir=self.dir)
        self.port = self.sink.port
        self.version = self.sink.version

    def count(self) -> int:
        return len(os.listdir(self.dir))

    def take_ids(self, messages: dict[str, bytes]) -> tuple[dict[str, int], int]:
        """Message-IDs of the complete messages dumped since the last take, and how many dumps were
        incomplete (an aborted transaction the sink had not cleaned up yet); the dumps are removed."""
        ids: Counter[str] = Counter()
        partial = 0
        for path in sorted(self.dir.iterdir()):
            data = path.read_bytes()
            start = data.find(b"\nMessage-ID:")  # after smtp-sink's own X- and Received: lines
            msg_id = bench_mail.message_id_of(data[start + 1 :]) if start >= 0 else None
            expected = messages.get(msg_id or "")
            if msg_id and expected is not None and _ends_alike(data, expected):
                ids[msg_id] += 1
            else:
                partial += 1
            path.unlink()
        return dict(ids), partial

    def stop(self) -> None:
        self.sink.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _ends_alike(dump: bytes, message: bytes) -> bool:
    """The dump holds the whole message: its last line (smtp-sink may store LF for CRLF)."""
    last = message.rstrip().rsplit(b"\n", 1)[-1].strip()
    return dump.rstrip().endswith(last)


class AiosmtpdSink:
    """bench_mail's aiosmtpd sink (another process, no delays), counting Message-IDs."""

    def __init__(self) -> None:
        self.sink = bench_mail.Sink(record_ids=True)
        self.port = self.sink.port
        self.version = f"aiosmtpd {bench_mail.version('aiosmtpd')}"

    def count(self) -> int:
        return int(self.sink.stats()["messages"])

    def take_ids(self, messages: dict[str, bytes]) -> tuple[dict[str, int], int]:
        self.sink.take()
        return self.sink.take_ids(), 0  # aiosmtpd hands over complete messages only

    def stop(self) -> None:
        self.sink.stop()


# ---------------------------------------------------------------------------------------- the probe


class Probe:
    """The shared page kill_probe.py counts into."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_bytes(bytes(kill_probe.PAGE_SIZE))
        with open(path, "r+b") as handle:
            self.page = mmap.mmap(handle.fileno(), kill_probe.PAGE_SIZE)

    def reset(self) -> None:
        self.page[:] = bytes(kill_probe.PAGE_SIZE)

    def __getitem__(self, offset: int) -> int:
        return kill_probe.read(self.page, offset)

    def close(self) -> None:
        self.page.close()


# ---------------------------------------------------------------------------------------- one kill


@dataclass
class Kill:
    command: str
    delay_ms: float  # after the batch began (the first MAIL)
    landed: str  # in the batch | after the batch | before the batch
    where: str | None  # one of PLACES for a kill in the batch, with the probe
    repeats: int
    repeated: list[str] = field(default_factory=list)  # subscribers who got their digest twice
    probe: list[int] = field(default_factory=list)  # MAIL commands, "."s handed over, 250s read
    problems: list[str] = field(default_factory=list)


@dataclass
class Setup:
    base: Path
    workdir: Path
    config: Path
    env: dict[str, str]
    sink: Sink
    probe: Probe | None
    subscribers: int


def child_command(setup: Setup, args: list[str], probed: bool) -> list[str]:
    if probed and setup.probe is not None:
        return [sys.executable, str(HERE / "kill_probe.py"), str(setup.probe.path), *args]
    return [sys.executable, "-m", "paperdigest", *args]


def outbox_rows(db: Path) -> list[tuple[str, str, str]]:
    """(subscriber, status, Message-ID) of every outbox row, read the way the next run would
    (SQLite recovers the WAL of a killed writer on open)."""
    conn = sqlite3.connect(db)
    try:
        return [tuple(row) for row in conn.execute("SELECT subscriber, status, message_id FROM outbox ORDER BY id")]
    finally:
        conn.close()


def stored_messages(db: Path) -> dict[str, bytes]:
    conn = sqlite3.connect(db)
    try:
        sql = "SELECT o.message_id, m.message FROM outbox o JOIN outbox_message m ON m.outbox_id = o.id"
        return {str(mid): bytes(msg) for mid, msg in conn.execute(sql)}
    finally:
        conn.close()


def wait_for_batch(setup: Setup, proc: subprocess.Popen[bytes], timeout: float = 120) -> int | None:
    """Poll (every 2 ms) until the first MAIL of the batch; its monotonic time in ns (None: the
    process ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if setup.probe is not None and setup.probe[kill_probe.MAILS] > 0:
            return setup.probe[kill_probe.FIRST_MAIL_NS]
        if setup.probe is None and setup.sink.count() > 0:
            return time.monotonic_ns()
        if proc.poll() is not None:
            return None
        time.sleep(0.002)
    raise RuntimeError("the batch did not begin")


def calibrate(setup: Setup, command: str) -> float:
    """One run without a kill: the length of its delivery batch in seconds (first MAIL to last 250),
    and a check that every digest arrived once."""
    db = setup.workdir / "run.db"
    bench_mail.copy_store(setup.base, db)
    if setup.probe is not None:
        setup.probe.reset()
    env = dict(setup.env, PAPERDIGEST_DB=f"sqlite:///{db}")
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            child_command(setup, COMMANDS[command], True), env=env, stdout=subprocess.DEVNULL, stderr=log
        )
        started = wait_for_batch(setup, proc)
        code = proc.wait(300)
        ended = time.monotonic_ns()
        if code != 0 or started is None:
            log.seek(0)
            said = log.read().decode("utf-8", "replace").strip()[-500:]
            raise RuntimeError(f"{command}: the calibration run failed (exit {code}): {said}")
    if setup.probe is not None:
        ended = setup.probe[kill_probe.LAST_REPLY_NS]
    ids, _ = setup.sink.take_ids(stored_messages(db))
    if len(ids) != setup.subscribers or set(ids.values()) != {1}:
        raise RuntimeError(f"{command}: the calibration run did not deliver each digest once: {len(ids)} ids")
    return (ended - started) / 1e9


def place(rows: list[tuple[str, str, str]], counts: list[int], repeated: list[str]) -> str:
    """Where in the batch a kill landed, from the rows as the kill left them (which one was claimed),
    the probe's counts and which digests arrived twice.

    The probe counts a message's "." once the send() that carried it has returned, and a process
    that has just handed data to the kernel is often preempted by the server it woke: a repeat of
    the claimed row whose 250 was not read yet is the server's part even when the probe did not get
    to count its "." (the server can only have stored it whole if the "." was handed over).
    """
    done = sum(1 for _, status, _ in rows if status in ("sent", "accepted", "failed"))
    claimed = [subscriber for subscriber, status, _ in rows if status == "sending"]
    mails, dots, replies = counts
    if claimed and mails == dots == replies == done + 1:
        return OURS
    # Claims come 50 at a time, so the one in flight is one of the claimed rows.
    if dots == replies + 1 or (len(repeated) == 1 and repeated[0] in claimed and replies == done):
        return SERVER
    if claimed and mails == done:
        return CLAIMING
    if claimed and mails == done + 1:
        return SENDING
    return BETWEEN


def one_kill(setup: Setup, command: str, batch_seconds: float, rng: random.Random) -> Kill:
    db = setup.workdir / "run.db"
    bench_mail.copy_store(setup.base, db)
    if setup.probe is not None:
        setup.probe.reset()
    env = dict(setup.env, PAPERDIGEST_DB=f"sqlite:///{db}")
    args = COMMANDS[command]
    proc = subprocess.Popen(
        child_command(setup, args, True), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    started = wait_for_batch(setup, proc)
    delay_ns = int(rng.uniform(0, batch_seconds) * 1e9)
    if started is not None:
        pause = (started + delay_ns - time.monotonic_ns()) / 1e9
        if pause > 0:
            time.sleep(pause)
        proc.send_signal(signal.SIGKILL)
    code = proc.wait(60)
    rows = before = outbox_rows(db)
    counts = [setup.probe[o] for o in (kill_probe.MAILS, kill_probe.DOTS, kill_probe.REPLIES)] if setup.probe else []
    open_rows = [row for row in rows if row[1] in ("pending", "sending")]
    if started is None:
        landed = "before the batch"
    elif not open_rows:
        landed = "after the batch"
    else:
        landed = "in the batch"
    problems = []
    if landed != "after the batch" and code != -signal.SIGKILL:
        problems.append(f"the killed run exited {code}")

    # The next run takes the dead sender's claims over once its heartbeat is older than the
    # takeover time ([daemon] takeover, 30 s by default): it runs that much later on the pinned
    # clock, as a daemon's next tick or a timer's next `send` would.
    later = dict(env, PAPERDIGEST_NOW=FINISH_AT)
    finish = subprocess.run(
        child_command(setup, args, False), env=later, capture_output=True, text=True, timeout=300, check=False
    )
    if finish.returncode != 0:
        problems.append(f"the run after the kill exited {finish.returncode}: {finish.stderr.strip()[-300:]}")
    rows = outbox_rows(db)
    if any(status != "sent" for _, status, _ in rows) or len(rows) != setup.subscribers:
        problems.append(f"not all sent after the second run: {Counter(status for _, status, _ in rows)}")
    ids, partial = setup.sink.take_ids(stored_messages(db))
    by_id = {mid: subscriber for subscriber, _, mid in rows}
    missing = sorted(by_id[mid] for mid in by_id if mid not in ids)
    if missing:
        problems.append(f"never delivered: {missing[:5]}")
    if partial:
        problems.append(f"{partial} incomplete dump(s) at the sink")
    repeated = sorted(by_id.get(mid, mid) for mid, n in ids.items() if n > 1)
    repeats = sum(n - 1 for n in ids.values())
    where = place(before, counts, repeated) if landed == "in the batch" and counts else None
    if where is not None and (repeats == 1) != (where in (SERVER, OURS)):
        claimed = [subscriber for subscriber, status, _ in before if status == "sending"]
        problems.append(f"{repeats} repeat(s) {repeated} for a kill in {where}; claimed {claimed}, probe {counts}")
    return Kill(command, delay_ns / 1e6, landed, where, repeats, repeated, counts, problems)


# ---------------------------------------------------------------------------------------- setup


def summarise(command: str, kills: list[Kill], batch_seconds: float, subscribers: int) -> dict[str, Any]:
    in_batch = [k for k in kills if k.landed == "in the batch"]
    repeats = sum(k.repeats for k in kills)
    sides = Counter(k.where for k in kills if k.repeats)
    return {
        "command": command,
        "kills": len(kills),
        "in_batch": len(in_batch),
        "after_batch": sum(1 for k in kills if k.landed == "after the batch"),
        "before_batch": sum(1 for k in kills if k.landed == "before the batch"),
        "repeats": repeats,
        "repeats_per_kill_in_batch": repeats / len(in_batch) if in_batch else None,
        "repeats_by_side": {
            "server": sides.get(SERVER, 0),
            "ours": sides.get(OURS, 0),
            "unplaced": sum(n for where, n in sides.items() if where not in (SERVER, OURS)),
        },
        "landed": {p: sum(1 for k in in_batch if k.where == p) for p in PLACES},
        # kills in the server's part that came before the probe could count the "." (see place())
        "server_dot_uncounted": sum(1 for k in in_batch if k.where == SERVER and k.probe[1] == k.probe[2]),
        "batch_seconds": batch_seconds,
        "ms_per_message": 1000 * batch_seconds / subscribers,
        "problems": [f"kill {i + 1}: {p}" for i, k in enumerate(kills) for p in k.problems],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--kills", type=int, help="kills of `send` (default 100; --quick 20)")
    parser.add_argument("--once-kills", type=int, help="kills of `run --once` (default 50; --quick 10)")
    parser.add_argument("--subscribers", type=int, help="digests per batch (default 200; --quick 100)")
    parser.add_argument("--quick", action="store_true", help="20 + 10 kills of 100-digest batches")
    parser.add_argument("--sink", choices=("smtp-sink", "aiosmtpd"), help="default: smtp-sink when installed")
    parser.add_argument("--smtp-sink", default=smtp_sink.binary() or smtp_sink.SMTP_SINK, help="the smtp-sink binary")
    parser.add_argument("--dump-dir", type=Path, help="where smtp-sink writes (default /dev/shm if writable)")
    parser.add_argument("--no-probe", action="store_true", help="run `python -m paperdigest` unprobed: no places")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill times (default 1)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    args.kills = args.kills if args.kills is not None else (20 if args.quick else 100)
    args.once_kills = args.once_kills if args.once_kills is not None else (10 if args.quick else 50)
    args.subscribers = args.subscribers or (100 if args.quick else 200)
    if args.sink is None:
        args.sink = "smtp-sink" if Path(args.smtp_sink).exists() else "aiosmtpd"
    if args.dump_dir is None:
        shm = Path("/dev/shm")
        args.dump_dir = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bench_mail._isolate(workdir)
    base = workdir / "base.db"
    bench_mail.progress(f"kill_loop: ingesting the seeds into {base}")
    bench_mail.build_store(base)
    sink: Sink = (
        SmtpSinkServer(args.smtp_sink, args.dump_dir or workdir) if args.sink == "smtp-sink" else AiosmtpdSink()
    )
    probe = None if args.no_probe else Probe(workdir / "probe.page")
    try:
        config = workdir / "config.toml"
        data = bench_mail.config_data(args.subscribers, sink.port, args.seed)
        config.write_text(bench_mail.config_toml(data), "utf-8")
        env = dict(os.environ, PAPERDIGEST_CONFIG=str(config), PAPERDIGEST_NOW=SEND_AT)
        setup = Setup(base, workdir, config, env, sink, probe, args.subscribers)
        rng = random.Random(args.seed)
        results = []
        for command, count in (("send", args.kills), ("run --once", args.once_kills)):
            if count <= 0:
                continue
            batch = min(calibrate(setup, command) for _ in range(CALIBRATION_RUNS))
            bench_mail.progress(f"kill_loop: {command}: a batch of {args.subscribers} takes {batch * 1000:.0f} ms")
            kills = []
            for index in range(count):
                kill = one_kill(setup, command, batch, rng)
                kills.append(kill)
                bench_mail.progress(
                    f"kill_loop: {command} {index + 1}/{count}: +{kill.delay_ms:.1f} ms, {kill.landed}"
                    + (f", {kill.where}" if kill.where else "")
                    + (f", REPEAT ({', '.join(kill.repeated)})" if kill.repeats else "")
                    + (f"; PROBLEM: {'; '.join(kill.problems)}" if kill.problems else "")
                )
            results.append({**summarise(command, kills, batch, args.subscribers), "each": [asdict(k) for k in kills]})
    finally:
        if probe is not None:
            probe.close()
        sink.stop()
    return {
        "benchmark": "kill_loop",
        "machine": bench_mail.machine(),
        "code": bench_mail.checkout_of_paperdigest(),
        "parameters": {
            "subscribers": args.subscribers,
            "sink": sink.version,
            "sink_kind": args.sink,
            "dumps": str(args.dump_dir or workdir) if args.sink == "smtp-sink" else None,
            "probe": not args.no_probe,
            "seed": args.seed,
            "message_bytes_mean": _mean_message_bytes(workdir / "run.db"),
        },
        "results": results,
    }


def _mean_message_bytes(db: Path) -> float | None:
    if not db.exists():
        return None
    messages = stored_messages(db)
    return sum(len(m) for m in messages.values()) / len(messages) if messages else None


def text_report(report: dict[str, Any]) -> str:
    m, p, code = report["machine"], report["parameters"], report["code"]
    lines = [
        f"machine   {m['platform']}; {m['cpu']}; {m['cpus']} CPUs, load {m['load_average']}",
        f"          Python {m['python']}, SQLite {m['sqlite']}, SQLAlchemy {m['sqlalchemy']}",
        f"code      paperdigest {code['commit']} ({code['package']})",
        f"setup     {p['subscribers']} digests per batch (~{(p['message_bytes_mean'] or 0) / 1024:.0f} KiB each), "
        f"sink {p['sink_kind']} ({p['sink']}{', dumps in ' + p['dumps'] if p['dumps'] else ''}), "
        f"probe {'on' if p['probe'] else 'off'}, seed {p['seed']}",
    ]
    for r in report["results"]:
        rate = r["repeats_per_kill_in_batch"]
        sides = r["repeats_by_side"]
        lines.append(
            f"{r['command']:<11}{r['kills']} kills, {r['in_batch']} in a batch ({r['after_batch']} after it); "
            f"batch {r['batch_seconds'] * 1000:.0f} ms, {r['ms_per_message']:.2f} ms/message"
        )
        lines.append(
            f"           repeats: {r['repeats']}"
            + (f" = {100 * rate:.1f}% of kills in a batch" if rate is not None else "")
            + f" (server's part {sides['server']}, our window {sides['ours']}"
            + (f", unplaced {sides['unplaced']}" if sides["unplaced"] else "")
            + ")"
        )
        if p["probe"]:
            landed = ", ".join(f"{place} {n}" for place, n in r["landed"].items())
            lines.append(f"           where the kills in a batch landed: {landed}")
            lines.append(
                f'           (of the server\'s part, {r["server_dot_uncounted"]} before the probe counted the ".")'
            )
        for problem in r["problems"]:
            lines.append(f"           PROBLEM {problem}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kill-loop-") as tmp:
        report = run(args, Path(tmp))
    print(json.dumps(report) if args.json else text_report(report))
    return 1 if any(r["problems"] for r in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
