"""The mail benchmark's parts: a store where 1,000 personalised digests are due, our `send` against
a floor that sends the same rendered messages with plain smtplib, both to Postfix's smtp-sink.

    ours:  paperdigest --config bench.toml --db URL send      (PAPERDIGEST_NOW pinned: the digests are due)
    floor: python benchmarks/floor_mail.py --port P messages  (our run's messages, read back from its outbox)

benchmarks/bench.py runs them in interleaved pairs; see benchmarks/README.md. The store, the
subscribers and their config are also what benchmarks/kill_loop.py uses, as is the aiosmtpd sink
kept here (`Sink`, for its --sink aiosmtpd).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import pairs
import stores
from smtp_sink import SmtpSink

from paperdigest.ingest import apply
from paperdigest.model import RawDump
from paperdigest.parse import parse_dump
from paperdigest.store.engine import open_engine

HERE = Path(__file__).resolve().parent
FLOOR = HERE / "floor_mail.py"
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



# ---------------------------------------------------------------------------------------- the aiosmtpd sink (kill_loop)


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


def build_store_at(url: str) -> int:
    """The five seeds ingested into the store at `url` with the clock at INGESTED_AT (so they
    fall in the Nov 23 period); returns how many papers it holds."""
    previous = os.environ.get("PAPERDIGEST_NOW")
    os.environ["PAPERDIGEST_NOW"] = INGESTED_AT
    try:
        engine = open_engine(url)
        for name, as_of in SEED_AS_OF.items():
            seed = SEEDS / name
            apply(engine, parse_dump(RawDump(str(seed), seed.read_bytes()), dt.date.fromisoformat(as_of)))
        with engine.connect() as conn:
            papers = int(conn.exec_driver_sql("SELECT count(*) FROM paper").scalar_one())
        engine.dispose()
    finally:
        if previous is None:
            os.environ.pop("PAPERDIGEST_NOW", None)
        else:
            os.environ["PAPERDIGEST_NOW"] = previous
    return papers


def build_store(path: Path) -> int:
    """build_store_at for a SQLite file."""
    return build_store_at(f"sqlite:///{path}")


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


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def config_toml(data: dict[str, Any]) -> str:
    """bench_mail's config (tables of scalars and lists, an array of subscriber tables) as TOML."""
    lines: list[str] = []
    for name, topic in data["topics"].items():
        lines.append(f"[topics.{toml_value(name)}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in topic.items()]
    lines.append("[mail]")
    lines += [f"{key} = {toml_value(value)}" for key, value in data["mail"].items()]
    for subscriber in data["subscribers"]:
        lines.append("[[subscribers]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in subscriber.items()]
    return "\n".join(lines) + "\n"


def isolated_env(workdir: Path) -> dict[str, str]:
    """The environment of the measured processes: nothing of the user's (no config, store or SMTP
    password), state under the benchmark's folder."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PAPERDIGEST_CONFIG", "PAPERDIGEST_DB", "PAPERDIGEST_SMTP_PASSWORD", "PAPERDIGEST_NOW")}
    env["STATE_DIRECTORY"] = str(workdir / "state")
    return env


def _isolate(workdir: Path) -> None:
    """isolated_env for this process (benchmarks/kill_loop.py)."""
    for name in ("PAPERDIGEST_CONFIG", "PAPERDIGEST_DB", "PAPERDIGEST_SMTP_PASSWORD", "PAPERDIGEST_NOW"):
        os.environ.pop(name, None)
    os.environ["STATE_DIRECTORY"] = str(workdir / "state")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- the pairs


@dataclass(frozen=True, slots=True)
class MailSetup:
    workdir: Path
    subscribers: int
    sink: SmtpSink
    config: Path
    env: dict[str, str]  # ours: the clock pinned at SEND_AT
    papers: dict[str, int]  # engine name -> papers in its prepared store


def prepare(workdir: Path, count: int, seed: int, sink: SmtpSink) -> MailSetup:
    config = workdir / "mail.toml"
    config.write_text(config_toml(config_data(count, sink.port, seed)), "utf-8")
    env = isolated_env(workdir) | {"PAPERDIGEST_NOW": SEND_AT.isoformat()}
    return MailSetup(workdir, count, sink, config, env, {})


def prepared_store(setup: MailSetup, engine: stores.Engine) -> str:
    """The engine's store with the seeds ingested and nothing queued: each pair copies it."""
    url = engine.fresh("mail_base")
    setup.papers[engine.name] = build_store_at(url)
    return url


def outbox_messages(engine: stores.Engine, url: str) -> list[tuple[str, bytes]]:
    """(recipient, message) of every digest our run sent, as stored in its outbox."""
    rows = engine.rows(url, "SELECT o.subscriber, m.message FROM outbox o JOIN outbox_message m"
                            " ON m.outbox_id = o.id WHERE o.status = 'sent' ORDER BY o.id")
    return [(str(recipient), bytes(message)) for recipient, message in rows]


def write_messages(path: Path, messages: list[tuple[str, bytes]]) -> int:
    """The floor's input: per message a line with the recipient, a line with the length, the bytes."""
    with path.open("wb") as out:
        for recipient, message in messages:
            out.write(f"{recipient}\n{len(message)}\n".encode())
            out.write(message)
    return path.stat().st_size


def _sink_took(sink: SmtpSink, before: int, expected: int, timeout: float = 10.0) -> int:
    """How many messages the sink took since `before` (its counter line lags the client's exit)."""
    deadline = time.monotonic() + timeout
    while True:
        took = sink.messages() - before
        if took >= expected or time.monotonic() > deadline:
            return took
        time.sleep(0.01)


def ours_command(setup: MailSetup, url: str) -> list[str]:
    return [*paperdigest_command(), "--config", str(setup.config), "--db", url, "send"]


def paperdigest_command() -> list[str]:
    """The `paperdigest` script installed beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "paperdigest"
    return [str(script)] if script.exists() else [sys.executable, "-m", "paperdigest"]


def pair(
    setup: MailSetup, engine: stores.Engine, base: str, cpus: set[int] | None, index: int
) -> tuple[pairs.Run, pairs.Run, list[str], dict[str, Any]]:
    """Ours on a fresh copy of the prepared store, then the floor sending the messages it stored."""
    n = setup.subscribers
    problems: list[str] = []
    url = engine.copy(base, f"mail_run{index}")
    servers = [setup.sink.pid, *engine.server_pids()]
    log = setup.workdir / "ours.log"
    before = setup.sink.messages()
    ours = pairs.run(ours_command(setup, url), cpus=cpus, env=setup.env, log=log, servers=servers)
    took = _sink_took(setup.sink, before, n)
    sent_lines = sum(1 for line in log.read_text("utf-8", "replace").splitlines() if line.startswith("sent "))
    messages = outbox_messages(engine, url)
    statuses = dict(Counter(status for (status,) in engine.rows(url, "SELECT status FROM outbox")))
    engine.drop(url)
    _expect(problems, "ours: `sent` lines", sent_lines, n)
    _expect(problems, "ours: outbox rows by status", statuses, {"sent": n})
    _expect(problems, "ours: messages the sink took", took, n)
    _expect(problems, "ours: distinct recipients", len({r for r, _ in messages}), n)
    file = setup.workdir / "messages.bin"
    size = write_messages(file, messages)
    floor_log = setup.workdir / "floor.log"
    before = setup.sink.messages()
    floor = pairs.run([sys.executable, str(FLOOR), "--port", str(setup.sink.port), "--sender", SENDER, str(file)],
                      cpus=cpus, env=isolated_env(setup.workdir), log=floor_log, servers=[setup.sink.pid])
    took = _sink_took(setup.sink, before, n)
    reported = json.loads(floor_log.read_text("utf-8").strip().splitlines()[-1])
    _expect(problems, "floor: messages sent", reported.get("sent"), n)
    _expect(problems, "floor: messages the sink took", took, n)
    info = {"message_bytes_mean": round(size / max(len(messages), 1)), "messages": len(messages)}
    return ours, floor, [f"pair {index + 1}: {p}" for p in problems], info


def _expect(problems: list[str], what: str, got: object, want: object) -> None:
    if got != want:
        problems.append(f"{what}: got {got}, want {want}")


def checkout_of_paperdigest() -> dict[str, str]:
    """Which code the children run: where paperdigest is imported from, and its git commit."""
    import paperdigest  # noqa: PLC0415  (lazy on purpose: only when the report names the code it ran)

    folder = Path(paperdigest.__file__).resolve().parent
    found = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no", "--", "."],
        capture_output=True,
        text=True,
        check=False,
    )
    commit = found.stdout.strip() or "unknown"
    return {"package": str(folder), "commit": commit + ("+changes" if dirty.stdout.strip() else "")}


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


