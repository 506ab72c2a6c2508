"""Reads at scale: does each read command, and one ingest, cost the same on a small and a large store?

Three SQLite stores of our schema are built with scale.build_store (plain sqlite3, fast): the
largest holds the synthetic papers 0..L-1, each smaller one the most recent of them, so all hold
the same recent papers. On each, as whole processes (start-up included, peak RSS from wait4):

    paperdigest papers --top 20 --json
    paperdigest papers --topic agents --top 20 --json
    paperdigest status --json
    paperdigest digest --subscriber reader@example.net --format text
    paperdigest ingest FRESH_DUMP --json          (200 entries: half new papers, half stored ones)

in rounds: each round runs every command on every store, the stores in a rotating order, and
ingests one fresh dump into each (the same dump everywhere; the digest's window holds the papers
of the fresh dumps ingested so far, the same in every store). The smallest store is the floor:
a command's ratio in a round is its wall time on a store over its wall time on the smallest, in
that round. A warm-up round (untimed) comes first. The clock is pinned after every stored
capture (PAPERDIGEST_NOW), so the digest's window starts after the stores' fill.

What this leaves out: PostgreSQL (SQLite only); a store's full history (the fill writes one dump
and one sighting per paper, where a real store of a million papers holds several sightings per
paper and thousands of dumps, which `status` counts); and a cold page cache (the warm-up round
reads every store first).
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pairs
import scale
from bench_mail import isolated_env, paperdigest_command, toml_value

NOW = "2031-12-01T12:00:00+00:00"  # after every stored capture and the fresh dumps' (scale.FRESH_EPOCH on)
SUBSCRIBER = "reader@example.net"
TOPIC = "agents"
TOPICS = scale.TOPICS
LIMIT_RATIO = 1.5
LIMIT_MB = 150.0


@dataclass(frozen=True, slots=True)
class ReadsSetup:
    workdir: Path
    sizes: list[int]
    urls: list[str]
    config: Path
    env: dict[str, str]
    build_s: list[float]
    index_s: list[float | None]  # building the topic index, part of build_s (None: code without one)


def commands(setup: ReadsSetup, url: str, dump: Path, entries: int) -> dict[str, list[str]]:
    base = [*paperdigest_command(), "--config", str(setup.config), "--db", url]
    return {
        "papers --top": [*base, "papers", "--top", "20", "--json"],
        "papers --topic": [*base, "papers", "--topic", TOPIC, "--top", "20", "--json"],
        "status": [*base, "status", "--json"],
        "digest (one subscriber)": [*base, "digest", "--subscriber", SUBSCRIBER, "--format", "text"],
        f"ingest ({entries} entries)": [*base, "ingest", str(dump), "--json"],
    }


def write_config(path: Path) -> None:
    lines = [f"[topics.{name}]\nkeywords = {toml_value(words)}\n" for name, words in TOPICS.items()]
    lines.append(f"[[subscribers]]\nemail = {toml_value(SUBSCRIBER)}\ntopics = {toml_value(sorted(TOPICS))}\n"
                 'cron = "0 7 * * *"\ntimezone = "UTC"\nmax_papers = 20\n')
    path.write_text("\n".join(lines), encoding="utf-8")


def write_dump(workdir: Path, seed: int, number: int, entries: int, held: range) -> Path:
    """Fresh dump `number` as a file: scale.fresh_listing's papers, rendered as our text layout."""
    path = workdir / "fresh" / scale.fresh_name(number)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scale.fresh_text(seed, number, entries, held), encoding="utf-8")
    return path


def add_sightings(path: Path) -> None:
    """One sighting per paper (the fill dump's), so that `status` counts a table that grew with the
    store. A real store holds several per paper: this is the least it could hold."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("INSERT INTO sighting (dump_id, paper_id, position, upvotes) "
                         "SELECT first_dump_id, id, id, upvotes FROM paper")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def prepare(workdir: Path, seed: int, sizes: list[int]) -> ReadsSetup:
    largest = max(sizes)
    paths = [workdir / f"reads_{size}.db" for size in sizes]
    build_s, index_s = [], []
    for path, size in zip(paths, sizes, strict=True):
        started = time.perf_counter()
        scale.build_store(path, seed, range(largest - size, largest))
        add_sightings(path)
        index_s.append(scale.index_topics(path))
        build_s.append(time.perf_counter() - started)
    config = workdir / "reads.toml"
    write_config(config)
    env = {**isolated_env(workdir), "PAPERDIGEST_NOW": NOW}
    return ReadsSetup(workdir, sizes, [f"sqlite:///{p}" for p in paths], config, env, build_s, index_s)


def measure(workdir: Path, seed: int, sizes: list[int], rounds: int, entries: int, cpus: set[int] | None
            ) -> dict[str, Any]:
    """A warm-up round, then `rounds` timed rounds; ratios against the smallest store, per round."""
    setup = prepare(workdir, seed, sizes)
    held = range(max(sizes) - min(sizes), max(sizes))  # the papers every store holds
    log = workdir / "reads.log"
    runs: dict[str, dict[int, list[pairs.Run]]] = {}
    problems: list[str] = []
    for number in range(rounds + 1):
        dump = write_dump(workdir, seed, number, entries, held)
        order = list(range(len(sizes)))
        order = order[number % len(order):] + order[:number % len(order)]  # rotate who goes first
        for which in order:
            for name, command in commands(setup, setup.urls[which], dump, entries).items():
                run = pairs.run(command, cpus=cpus, env=setup.env, log=log)
                if name.startswith("ingest"):
                    said = [json.loads(line) for line in log.read_text("utf-8").splitlines() if line.startswith("{")]
                    if [d.get("entries") for d in said] != [entries]:
                        problems.append(f"{name} on {sizes[which]:,} papers said {said}")
                if name.startswith("digest") and number > 0 and "reader@example.net" not in log.read_text("utf-8"):
                    problems.append(f"{name} on {sizes[which]:,} papers rendered no digest")
                if number > 0:
                    runs.setdefault(name, {}).setdefault(sizes[which], []).append(run)
    figures = []
    floor = min(sizes)
    for name, by_size in runs.items():
        for size in sizes:
            ratios = [r.wall_s / f.wall_s for r, f in zip(by_size[size], by_size[floor], strict=True)]
            cpu_ratios = [r.cpu_s / f.cpu_s for r, f in zip(by_size[size], by_size[floor], strict=True)]
            figures.append({
                "command": name, "papers": size,
                "ratio": _spread(ratios),
                "cpu_ratio": _spread(cpu_ratios),
                "wall_s": _spread([r.wall_s for r in by_size[size]]),
                "cpu_s": _spread([r.cpu_s for r in by_size[size]]),
                "peak_rss_mb": round(max(r.peak_rss_mb for r in by_size[size]), 1),
            })
    return {"sizes": sizes, "rounds": rounds, "entries_per_dump": entries, "topic": TOPIC,
            "build_s": [round(b, 1) for b in setup.build_s],
            "topic_index_s": [None if i is None else round(i, 1) for i in setup.index_s],
            "figures": figures, "problems": problems}


def _spread(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "each": [round(v, 3) for v in values]}


def targets(reads: dict[str, Any]) -> list[tuple[str, float | None, float, str]]:
    """Per command and store beyond the floor: the ratio (<= 1.5x); per command: the largest peak RSS (< 150 MB)."""
    rows: list[tuple[str, float | None, float, str]] = []
    floor = min(reads["sizes"])
    for f in reads["figures"]:
        if f["papers"] != floor:
            rows.append((f"reads at scale: `{f['command']}`, {f['papers']:,} papers / {floor:,} (median)",
                         f["ratio"]["median"], LIMIT_RATIO, "x"))
    largest: dict[str, tuple[float, int]] = {}
    for f in reads["figures"]:
        largest[f["command"]] = max(largest.get(f["command"], (0.0, 0)), (f["peak_rss_mb"], f["papers"]))
    for command, (peak, papers) in largest.items():
        rows.append((f"reads at scale: `{command}` peak RSS, the largest of every store (at {papers:,} papers)",
                     peak, LIMIT_MB, "MB"))
    return rows


def lines(reads: dict[str, Any]) -> list[str]:
    sizes = reads["sizes"]
    out = [f"reads at scale: whole processes on SQLite stores of {', '.join(f'{s:,}' for s in sizes)} papers "
           f"(built in {', '.join(f'{b:.0f}' for b in reads['build_s'])} s); {reads['rounds']} rounds after a "
           f"warm-up; the {min(sizes):,}-paper store is the floor (ratio = wall / its wall, same round)"]
    if any(i is not None for i in reads.get("topic_index_s", [])):
        out.append("  topic index built (in the build times above) in "
                   f"{', '.join(f'{i:.1f}' for i in reads['topic_index_s'])} s")
    for f in reads["figures"]:
        out.append(f"  {f['command']:<24} {f['papers']:>9,} papers  ratio {_shown(f['ratio'])}x  "
                   f"CPU ratio {_shown(f['cpu_ratio'])}x  wall {_shown(f['wall_s'])} s  CPU {_shown(f['cpu_s'])} s  "
                   f"peak RSS {f['peak_rss_mb']:.0f} MB")
    out += [f"  PROBLEM {p}" for p in reads["problems"]]
    return out


def _shown(spread: dict[str, Any]) -> str:
    return f"{spread['median']:.2f} [{spread['min']:.2f}-{spread['max']:.2f}]"
