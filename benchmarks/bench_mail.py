"""Mail benchmark: our enqueue + deliver of N digests against a plain-smtplib floor, same SMTP sink.

    python benchmarks/bench_mail.py [--quick] [--subscribers N] [--repeats N] [--json]
    python benchmarks/bench_mail.py --quick --profile      # cProfile of our run instead

A store holds the five seeds, ingested the day before the period; N subscribers with their
own topics all get the 07:00 UTC digest. Ours is `enqueue_due` + `deliver_due` over SMTP to an
aiosmtpd sink in another process; the floor sends the same rendered bytes with `smtplib` over
one connection to the same sink. Timing runs never assert anything: the report says PASS or
FAIL against the target and the exit status is 0 either way (1 only when a check of what the
sink received fails). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import multiprocessing as mp
import os
import platform
import pstats
import random
import re
import smtplib
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from importlib.metadata import version
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from paperdigest.config import Settings, validate
from paperdigest.digest.job import queue_due as enqueue_due
from paperdigest.ingest import apply
from paperdigest.mail import transport_for
from paperdigest.mail.outbox import deliver_due
from paperdigest.mail.transport import Transport
from paperdigest.model import RawDump
from paperdigest.parse import parse_dump
from paperdigest.store.engine import open_engine

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
# Capture dates of the seeds, as in tests/conftest.py (SEED_AS_OF).
SEED_AS_OF = {
    "000_99135a5897ec12b8.txt": "2025-12-30",
    "001_3e4a064d45c80381.txt": "2026-03-12",
    "002_35bc1272005cc0d3.txt": "2026-11-03",
    "003_00886173680504fb.txt": "2026-11-02",
    "004_d0e4e6143df38525.txt": "2026-11-04",
}
INGESTED_AT = "2026-11-22T08:00:00+00:00"  # the clock while ingesting: inside the window of the next period
SEND_AT = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)  # the 07:00 UTC period of Nov 23 is due
FROM = "Paper Digest <digest@example.org>"
SENDER = "digest@example.org"
TARGET_RATIO = 3.0

TOPICS: dict[str, dict[str, list[str]]] = {
    "agents": {"keywords": ["agent", "web agent", "GUI", "computer use", "tool use"]},
    "robotics": {"keywords": ["robot", "manipulation", "embodied", "navigation", "vision-language-action"]},
    "reasoning": {"keywords": ["reasoning", "chain-of-thought", "math", "logic"]},
    "generalization": {"keywords": ["generalist", "generalization", "foundation model", "multi-task"]},
    "multimodal": {"keywords": ["multimodal", "vision-language", "video", "image", "audio"]},
    "llm": {
        "keywords": ["language model", "LLM", "instruction tuning", "fine-tuning", "prompt"],
        "exclude": ["survey"],
    },
    "benchmarks": {"keywords": ["benchmark", "dataset", "evaluation", "leaderboard"]},
    "rl": {"keywords": ["reinforcement learning", "policy", "reward", "offline RL"]},
    "planning": {"keywords": ["planning", "decision-making", "world model", "search"]},
    "medicine": {"keywords": ["medical", "biomedical", "clinical", "medicine", "health"]},
    "efficiency": {"keywords": ["efficient", "scaling", "routing", "compression", "latency"]},
    "multi-agent": {"keywords": ["multi-agent", "collaboration", "communication", "cooperative"]},
}
MAX_PAPERS = (10, 15, 20, 25, 30, 40)
MIN_SCORES = (0.0, 0.0, 0.0, 2.0)
NAMES = ("Ada Lovelace", "Grace Hopper", "Zoë Ünal", "José Núñez", "Alan Turing", None, "Björk Guðmundsdóttir")


# ---------------------------------------------------------------------------------------- the sink


_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


def message_id_of(content: bytes) -> str | None:
    """The Message-ID header of a message (searched in its header only)."""
    head = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = _MESSAGE_ID.search(head)
    return found.group(1).decode("ascii", "replace") if found else None


class _CountingHandler:
    """Accepts every message; counts messages, octets, distinct recipients and the sink's CPU time,
    and, when asked to, how many times each Message-ID arrived (for benchmarks/kill_loop.py)."""

    def __init__(self, record_ids: bool = False) -> None:
        self.lock = threading.Lock()
        self.messages = 0
        self.octets = 0
        self.recipients: set[str] = set()
        self.cpu_start = time.process_time()
        self.record_ids = record_ids
        self.ids: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages += 1
            self.octets += len(envelope.content)
            self.recipients.update(r.lower() for r in envelope.rcpt_tos)
            if self.record_ids:
                self.ids[message_id_of(envelope.content) or "(none)"] += 1
        return "250 OK"

    def take_ids(self) -> dict[str, int]:
        with self.lock:
            ids, self.ids = dict(self.ids), Counter()
        return ids

    def stats(self, reset: bool) -> dict[str, Any]:
        with self.lock:
            cpu = time.process_time()
            out = {
                "messages": self.messages,
                "octets": self.octets,
                "recipients": len(self.recipients),
                "cpu_seconds": round(cpu - self.cpu_start, 4),
            }
            if reset:
                self.messages, self.octets, self.recipients, self.cpu_start = 0, 0, set(), cpu
        return out


def _sink_main(conn: Connection, record_ids: bool = False) -> None:
    """The sink process: aiosmtpd's Controller on 127.0.0.1; answers 'stats' / 'reset' / 'ids' / 'stop'
    on the pipe."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415  (lazy on purpose: only the sink's process)

    handler = _CountingHandler(record_ids)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    conn.send(port)
    try:
        while True:
            command = conn.recv()
            if command == "stop":
                break
            if command == "ids":
                conn.send(handler.take_ids())
                continue
            conn.send(handler.stats(reset=command == "reset"))
    finally:
        controller.stop()
        conn.send("stopped")


class Sink:
    """The aiosmtpd sink in its own process (spawned: no GIL, no state shared with the benchmark)."""

    def __init__(self, record_ids: bool = False) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_sink_main, args=(child, record_ids), name="bench-mail-sink", daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(60):
            raise RuntimeError("the SMTP sink did not start within 60 s")
        self.port: int = self.conn.recv()

    def take(self) -> dict[str, Any]:
        """What the sink received (and its CPU time) since the last take, and start counting afresh."""
        self.conn.send("reset")
        stats: dict[str, Any] = self.conn.recv()
        return stats

    def stats(self) -> dict[str, Any]:
        """What the sink received since the last take, without starting afresh."""
        self.conn.send("stats")
        stats: dict[str, Any] = self.conn.recv()
        return stats

    def take_ids(self) -> dict[str, int]:
        """How many times each Message-ID arrived since the last take (with record_ids)."""
        self.conn.send("ids")
        ids: dict[str, int] = self.conn.recv()
        return ids

    def stop(self) -> None:
        if self.process.is_alive():
            self.conn.send("stop")
            if self.conn.poll(10):
                self.conn.recv()
        self.process.join(10)

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------- store and config


def build_store(path: Path) -> int:
    """The five seeds ingested with the clock at INGESTED_AT (so they fall in the Nov 23 period)."""
    previous = os.environ.get("PAPERDIGEST_NOW")
    os.environ["PAPERDIGEST_NOW"] = INGESTED_AT
    try:
        engine = open_engine(f"sqlite:///{path}")
        for name, as_of in SEED_AS_OF.items():
            seed = SEEDS / name
            apply(engine, parse_dump(RawDump(str(seed), seed.read_bytes()), dt.date.fromisoformat(as_of)))
        engine.dispose()
    finally:
        if previous is None:
            os.environ.pop("PAPERDIGEST_NOW", None)
        else:
            os.environ["PAPERDIGEST_NOW"] = previous
    with sqlite3.connect(path) as conn:
        papers = int(conn.execute("SELECT count(*) FROM paper").fetchone()[0])
    conn.close()
    return papers


def copy_store(source: Path, target: Path) -> None:
    """A fresh copy of the ingested store (the outbox is empty again), through SQLite's backup API."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def subscribers(count: int, seed: int) -> list[dict[str, Any]]:
    """Personalised subscribers: 4-6 topics each, varying caps, thresholds and display names."""
    rng = random.Random(seed)
    names = sorted(TOPICS)
    out = []
    for index in range(count):
        entry: dict[str, Any] = {
            "email": f"reader{index:05d}@example.net",
            "topics": rng.sample(names, 4 + index % 3),
            "cron": "0 7 * * *",
            "timezone": "UTC",
            "format": "both",
            "max_papers": MAX_PAPERS[index % len(MAX_PAPERS)],
            "min_score": MIN_SCORES[index % len(MIN_SCORES)],
        }
        name = NAMES[index % len(NAMES)]
        if name is not None:
            entry["name"] = f"{name} {index}"
        out.append(entry)
    return out


def config_data(count: int, port: int, seed: int) -> dict[str, Any]:
    """The benchmark's config as the TOML file would hold it: N subscribers, SMTP to 127.0.0.1:port."""
    return {
        "topics": TOPICS,
        "mail": {
            "from": FROM,
            "transport": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "timeout": 60,
        },
        "subscribers": subscribers(count, seed),
    }


def make_settings(count: int, port: int, seed: int) -> Settings:
    return validate(config_data(count, port, seed), "bench")


# ---------------------------------------------------------------------------------------- the two runs


class TimedTransport:
    """Wraps our transport and adds up the time spent inside send() (the SMTP exchange)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    def __enter__(self) -> TimedTransport:
        self.inner.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        start = time.perf_counter()
        self.inner.__exit__(exc_type, exc, tb)
        self.seconds += time.perf_counter() - start

    def send(self, *, sender: str, recipient: str, message: bytes, name: str) -> None:
        start = time.perf_counter()
        try:
            self.inner.send(sender=sender, recipient=recipient, message=message, name=name)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


@dataclass(frozen=True, slots=True)
class OursResult:
    enqueue_seconds: float
    deliver_seconds: float
    smtp_seconds: float  # of deliver: inside transport.send (and the QUIT)
    cpu_seconds: float  # CPU time of this process over enqueue + deliver
    planned: int
    pending: int
    empty: int
    sent: int
    papers_sent: int

    @property
    def seconds(self) -> float:
        return self.enqueue_seconds + self.deliver_seconds


def run_ours(db: Path, settings: Settings, profile: cProfile.Profile | None = None) -> OursResult:
    engine = open_engine(f"sqlite:///{db}")  # schema check and pragmas outside the timing
    try:
        if profile is not None:
            profile.enable()
        cpu = time.process_time()
        start = time.perf_counter()
        planned = enqueue_due(engine, settings, SEND_AT)
        enqueued = time.perf_counter()
        transport = TimedTransport(transport_for(settings))
        deliveries = deliver_due(engine, settings, transport, SEND_AT)
        done = time.perf_counter()
        cpu = time.process_time() - cpu
        if profile is not None:
            profile.disable()
    finally:
        engine.dispose()
    return OursResult(
        enqueue_seconds=enqueued - start,
        deliver_seconds=done - enqueued,
        smtp_seconds=transport.seconds,
        cpu_seconds=cpu,
        planned=len(planned),
        pending=sum(1 for p in planned if p.status == "pending"),
        empty=sum(1 for p in planned if p.status == "empty"),
        sent=sum(1 for d in deliveries if d.outcome == "sent"),
        papers_sent=sum(p.papers for p in planned if p.status == "pending"),
    )


def sent_messages(db: Path) -> list[tuple[str, bytes]]:
    """The rendered messages of our run, as stored in the outbox (recipient, bytes)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT o.subscriber, m.message FROM outbox o JOIN outbox_message m ON m.outbox_id = o.id"
            " WHERE o.status = 'sent' ORDER BY o.id"
        ).fetchall()
    conn.close()
    return [(str(r[0]), bytes(r[1])) for r in rows]


def run_floor(port: int, messages: list[tuple[str, bytes]]) -> tuple[float, float]:
    """The same bytes over ONE plain smtplib connection: connect, EHLO, sendmail each, QUIT.

    Returns (wall seconds, CPU seconds of this process)."""
    cpu = time.process_time()
    start = time.perf_counter()
    client = smtplib.SMTP("127.0.0.1", port, timeout=60)
    client.ehlo()
    for recipient, message in messages:
        client.sendmail(SENDER, [recipient], message)
    client.quit()
    return time.perf_counter() - start, time.process_time() - cpu


# ---------------------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": version("sqlalchemy"),
        "jinja2": version("jinja2"),
        "css_inline": version("css-inline"),
        "aiosmtpd": version("aiosmtpd"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 subscribers instead of 1,000 (well under a minute)")
    parser.add_argument("--subscribers", type=int, help="subscribers N (default 1000; --quick 100)")
    parser.add_argument("--repeats", type=int, help="runs on fresh copies of the store; best is reported (default 3)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the subscribers' topic choices (default 7)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--profile", action="store_true", help="cProfile our run (one repeat) instead of the report")
    parser.add_argument("--top", type=int, default=30, help="lines of --profile output per ordering (default 30)")
    args = parser.parse_args(argv)
    if args.subscribers is None:
        args.subscribers = 100 if args.quick else 1000
    if args.repeats is None:
        args.repeats = 3
    if args.subscribers < 1 or args.repeats < 1:
        parser.error("--subscribers and --repeats must be at least 1")
    return args


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _isolate(workdir: Path) -> None:
    """Nothing of the user's: no config, store or SMTP password from the environment."""
    for name in ("PAPERDIGEST_CONFIG", "PAPERDIGEST_DB", "PAPERDIGEST_SMTP_PASSWORD", "PAPERDIGEST_NOW"):
        os.environ.pop(name, None)
    os.environ["STATE_DIRECTORY"] = str(workdir / "state")


def check(problems: list[str], what: str, got: object, want: object) -> None:
    if got != want:
        problems.append(f"{what}: got {got}, want {want}")


def benchmark(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    n = args.subscribers
    base = workdir / "base.db"
    progress(f"bench_mail: ingesting the seeds into {base}")
    papers = build_store(base)
    problems: list[str] = []
    runs: list[dict[str, Any]] = []
    with Sink() as sink:
        progress(f"bench_mail: sink (aiosmtpd {version('aiosmtpd')}) on 127.0.0.1:{sink.port}, pid {sink.process.pid}")
        settings = make_settings(n, sink.port, args.seed)
        if args.profile:
            db = workdir / "profile.db"
            copy_store(base, db)
            profiler = cProfile.Profile()
            ours = run_ours(db, settings, profiler)
            sink.take()
            return {"profile": profiler, "ours": ours}
        for repeat in range(1, args.repeats + 1):
            db = workdir / f"run{repeat}.db"
            copy_store(base, db)
            sink.take()
            ours = run_ours(db, settings)
            got = sink.take()
            messages = sent_messages(db)
            floor_seconds, floor_cpu = run_floor(sink.port, messages)
            floor_got = sink.take()
            where = f"run {repeat}"
            check(problems, f"{where}: our digests queued (pending)", ours.pending, n)
            check(problems, f"{where}: our deliveries marked sent", ours.sent, n)
            check(problems, f"{where}: sink messages from ours", got["messages"], n)
            check(problems, f"{where}: sink distinct recipients from ours", got["recipients"], n)
            check(problems, f"{where}: sink messages from the floor", floor_got["messages"], n)
            check(problems, f"{where}: octets floor vs ours", floor_got["octets"], got["octets"])
            runs.append(
                {
                    "ours": asdict(ours) | {"seconds": ours.seconds},
                    "floor_seconds": floor_seconds,
                    "floor_cpu_seconds": floor_cpu,
                    "sink_ours": got,
                    "sink_floor": floor_got,
                    "message_bytes_mean": sum(len(m) for _, m in messages) / max(len(messages), 1),
                }
            )
            progress(
                f"bench_mail: run {repeat}/{args.repeats}: ours {ours.seconds:.2f} s "
                f"(enqueue {ours.enqueue_seconds:.2f} + deliver {ours.deliver_seconds:.2f}), "
                f"floor {floor_seconds:.2f} s"
            )
            db.unlink()
    ours_run = min(runs, key=lambda r: r["ours"]["seconds"])
    floor_run = min(runs, key=lambda r: r["floor_seconds"])
    best_ours, best_floor = ours_run["ours"], floor_run["floor_seconds"]
    ratio = best_ours["seconds"] / best_floor
    return {
        "benchmark": "mail",
        "quick": args.quick,
        "machine": machine(),
        "parameters": {
            "subscribers": n,
            "repeats": args.repeats,
            "seed": args.seed,
            "papers_in_store": papers,
            "topics": len(TOPICS),
            "topics_per_subscriber": "4-6",
            "max_papers": list(MAX_PAPERS),
            "format": "both",
            "period": "2026-11-23T07:00Z (cron 0 7 * * * UTC)",
            "smtp": "127.0.0.1, security none, aiosmtpd sink in its own process",
        },
        "ours": {
            "seconds": best_ours["seconds"],
            "messages_per_second": n / best_ours["seconds"],
            "enqueue_seconds": best_ours["enqueue_seconds"],
            "deliver_seconds": best_ours["deliver_seconds"],
            "deliver_smtp_seconds": best_ours["smtp_seconds"],
            "deliver_bookkeeping_seconds": best_ours["deliver_seconds"] - best_ours["smtp_seconds"],
            "ms_per_message": {
                "enqueue": 1000 * best_ours["enqueue_seconds"] / n,
                "deliver": 1000 * best_ours["deliver_seconds"] / n,
                "deliver_smtp": 1000 * best_ours["smtp_seconds"] / n,
            },
            "papers_sent": best_ours["papers_sent"],
            "cpu_seconds": best_ours["cpu_seconds"],
            "sink_cpu_seconds": ours_run["sink_ours"]["cpu_seconds"],
        },
        "floor": {
            "seconds": best_floor,
            "messages_per_second": n / best_floor,
            "ms_per_message": 1000 * best_floor / n,
            "cpu_seconds": floor_run["floor_cpu_seconds"],
            "sink_cpu_seconds": floor_run["sink_floor"]["cpu_seconds"],
        },
        "message_bytes_mean": runs[0]["message_bytes_mean"],
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "verdict": "PASS" if ratio <= TARGET_RATIO else "FAIL",
        "checks": problems or "ok",
        "runs": runs,
    }


def text_report(report: dict[str, Any]) -> str:
    m, p, ours, fl = report["machine"], report["parameters"], report["ours"], report["floor"]
    per = ours["ms_per_message"]
    checks = report["checks"]
    checked = "ok: every subscriber got exactly one message, the floor sent the same bytes"
    share = 100 * ours["enqueue_seconds"] / ours["seconds"]
    lines = [
        f"machine     {m['platform']}; {m['cpu']}; {m['cpus']} CPUs ({m['usable_cpus']} usable), "
        f"load {m['load_average']}",
        f"            Python {m['python']}, SQLite {m['sqlite']}, SQLAlchemy {m['sqlalchemy']}, Jinja2 {m['jinja2']}, "
        f"css-inline {m['css_inline']}, aiosmtpd {m['aiosmtpd']}",
        f"parameters  {p['subscribers']} subscribers{' (--quick)' if report['quick'] else ''}, "
        f"{p['topics_per_subscriber']} of {p['topics']} topics each, max_papers {p['max_papers']}, "
        f"format {p['format']}; {p['papers_in_store']} papers in the window; best of {p['repeats']} run(s)",
        f"            {ours['papers_sent']} papers in all digests, {report['message_bytes_mean'] / 1024:.1f} KiB "
        "per message on average",
        f"ours        {ours['seconds']:.3f} s  {ours['messages_per_second']:8.1f} messages/s  "
        "(enqueue_due + deliver_due, SMTP to the sink)",
        f"  enqueue   {ours['enqueue_seconds']:.3f} s  {per['enqueue']:.2f} ms/message  ({share:.0f}%: window query, "
        "select, render text+HTML, build message, store in outbox)",
        f"  deliver   {ours['deliver_seconds']:.3f} s  {per['deliver']:.2f} ms/message  (of which SMTP "
        f"{ours['deliver_smtp_seconds']:.3f} s, claim/mark sent/record papers "
        f"{ours['deliver_bookkeeping_seconds']:.3f} s)",
        f"floor       {fl['seconds']:.3f} s  {fl['messages_per_second']:8.1f} messages/s  "
        "(same bytes, one smtplib connection, sendmail each)",
        f"cpu         ours {ours['cpu_seconds']:.3f} s (sink {ours['sink_cpu_seconds']:.3f} s); "
        f"floor client {fl['cpu_seconds']:.3f} s (sink {fl['sink_cpu_seconds']:.3f} s)",
        f"ratio       ours/floor = {report['ratio']:.2f}x  (target <= {report['target_ratio']:.0f}x)  "
        f"{report['verdict']}",
        f"checks      {checked if checks == 'ok' else 'FAILED: ' + '; '.join(checks)}",
    ]
    return "\n".join(lines)


def profile_report(result: dict[str, Any], top: int) -> str:
    out = io.StringIO()
    ours: OursResult = result["ours"]
    out.write(
        f"ours under cProfile: {ours.seconds:.3f} s (enqueue {ours.enqueue_seconds:.3f}, "
        f"deliver {ours.deliver_seconds:.3f}, SMTP {ours.smtp_seconds:.3f}), {ours.sent} sent; "
        "timings are inflated by the profiler\n"
    )
    for order in ("cumulative", "tottime"):
        out.write(f"\n--- by {order} ---\n")
        pstats.Stats(result["profile"], stream=out).sort_stats(order).print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        workdir = Path(tmp)
        _isolate(workdir)
        result = benchmark(args, workdir)
    if args.profile:
        print(profile_report(result, args.top))
        return 0
    if args.json:
        print(json.dumps(result, indent=None, sort_keys=False))
    else:
        print(text_report(result))
    return 0 if result["checks"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
