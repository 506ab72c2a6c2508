"""The ingest benchmark's parts: synthetic dumps, our `backfill` against a floor that reads and
writes the same files minimally, and scale independence.

    ours:  paperdigest --db URL backfill DUMPS_DIR --json
    floor: python benchmarks/floor.py --db URL DUMPS_DIR

benchmarks/bench.py runs them in interleaved pairs, each into a fresh store, and checks after
every pair that the two stores agree (dumps, papers, sightings, sums of upvotes) and that their
tables have the same columns, constraints and indexes. See benchmarks/README.md.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pairs
import stores
import synth
from bench_mail import isolated_env, paperdigest_command

HERE = Path(__file__).resolve().parent
FLOOR = HERE / "floor.py"
MARKER = ".bench-ingest.json"  # hidden: neither ours nor the floor reads it as a dump


@dataclass(frozen=True, slots=True)
class Params:
    seed: int
    dumps: int
    entries: int
    papers: int


@dataclass(frozen=True, slots=True)
class IngestSetup:
    workdir: Path
    dumps_dir: Path
    params: Params
    env: dict[str, str]


def corpus_of(params: Params) -> synth.Corpus:
    return synth.Corpus(params.seed, params.papers, params.dumps, params.entries)


def check_keys(params: Params, sample: int = 2_000) -> None:
    """The floor folds titles as synth.fast_key does: it must agree with our title key."""
    from paperdigest.ingest.identity import title_key  # noqa: PLC0415  (lazy on purpose: a mail-only run skips it)

    step = max(1, params.papers // sample)
    for index in range(0, params.papers, step):
        paper = synth.make_paper(params.seed, index)
        if title_key(paper.title) != paper.key:
            raise SystemExit(f"synthetic title {paper.title!r}: fast key {paper.key!r} != {title_key(paper.title)!r}")


def generate(params: Params, data_dir: Path) -> dict[str, Any]:
    """Write the dumps (or reuse those of an earlier run with the same parameters)."""
    dumps_dir = data_dir / "dumps"
    marker = dumps_dir / MARKER
    wanted = asdict(params)
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        found = [p for p in dumps_dir.iterdir() if not p.name.startswith(".")]
        return {"reused": True, "files": len(found), "bytes": sum(p.stat().st_size for p in found)}
    if dumps_dir.exists():
        if not marker.exists() and any(dumps_dir.iterdir()):
            raise SystemExit(f"{dumps_dir} holds files this benchmark did not write; choose another --out")
        shutil.rmtree(dumps_dir)
    written, _ = synth.write_dumps(corpus_of(params), dumps_dir)
    marker.write_text(json.dumps(wanted))
    size = sum(p.stat().st_size for p in dumps_dir.iterdir() if not p.name.startswith("."))
    return {"reused": False, "files": written, "bytes": size}


def prepare(workdir: Path, data_dir: Path, params: Params) -> tuple[IngestSetup, dict[str, Any]]:
    check_keys(params)
    generated = generate(params, data_dir)
    return IngestSetup(workdir, data_dir / "dumps", params, isolated_env(workdir)), generated


def ours_command(setup: IngestSetup, url: str) -> list[str]:
    return [*paperdigest_command(), "--db", url, "backfill", str(setup.dumps_dir), "--json"]


def floor_command(setup: IngestSetup, url: str) -> list[str]:
    return [sys.executable, str(FLOOR), "--db", url, str(setup.dumps_dir)]


def pair(
    setup: IngestSetup, engine: stores.Engine, cpus: set[int] | None, index: int
) -> tuple[pairs.Run, pairs.Run, list[str], dict[str, Any]]:
    """Ours into a fresh store, then the floor into another; the two stores compared, then dropped."""
    servers = engine.server_pids()
    problems: list[str] = []
    ours_url = engine.fresh(f"ingest_ours{index}")
    ours_log = setup.workdir / "ours.log"
    ours = pairs.run(ours_command(setup, ours_url), cpus=cpus, env=setup.env, log=ours_log, servers=servers)
    floor_url = engine.fresh(f"ingest_floor{index}")
    floor_log = setup.workdir / "floor.log"
    floor = pairs.run(floor_command(setup, floor_url), cpus=cpus, env=setup.env, log=floor_log, servers=servers)
    ours_lines = [json.loads(line) for line in ours_log.read_text("utf-8").splitlines() if line.startswith("{")]
    floor_said = json.loads(floor_log.read_text("utf-8").strip().splitlines()[-1])
    ours_store, floor_store = stores.counts(engine, ours_url), stores.counts(engine, floor_url)
    ours_schema, floor_schema = engine.schema(ours_url), engine.schema(floor_url)
    engine.drop(ours_url)
    engine.drop(floor_url)
    dumps, entries = setup.params.dumps, setup.params.dumps * setup.params.entries
    if len(ours_lines) != dumps or sum(line["entries"] for line in ours_lines) != entries:
        problems.append(f"ours stored {len(ours_lines)} dumps, {sum(x['entries'] for x in ours_lines)} entries; "
                        f"want {dumps}, {entries}")
    if floor_said != {"dumps": dumps, "entries": entries}:
        problems.append(f"the floor stored {floor_said}; want {dumps} dumps, {entries} entries")
    if ours_store != floor_store:
        problems.append(f"the stores disagree: ours {ours_store}, floor {floor_store}")
    if ours_schema != floor_schema:
        only_ours = sorted(set(ours_schema) - set(floor_schema))
        only_floor = sorted(set(floor_schema) - set(ours_schema))
        problems.append(f"the floor's tables differ from ours (update benchmarks/floor.py): only ours {only_ours}; "
                        f"only the floor {only_floor}")
    info = {"store": ours_store, "stores_agree": ours_store == floor_store,
            "schemas_agree": ours_schema == floor_schema}
    return ours, floor, [f"pair {index + 1}: {p}" for p in problems], info


def measure_scale(workdir: Path, seed: int, small: int, large: int, entries: int, repeats: int) -> dict[str, Any]:
    """scale.py: one dump's `apply` in a small and a large store (SQLite), in this process."""
    import scale  # noqa: PLC0415  (lazy on purpose: it imports our package and SQLAlchemy)

    timings = scale.measure(workdir, seed, small, large, entries, repeats)
    for timing in timings:
        stores.Sqlite(workdir).drop(f"sqlite:///{workdir / f'scale_{timing.papers}.db'}")
    small_t, large_t = timings
    return {
        "entries_per_dump": entries,
        "dumps": repeats,
        "small": {"papers": small_t.papers, "build_s": round(small_t.build_seconds, 1),
                  "median_ms": round(small_t.median_ms, 2), "samples_ms": [round(x, 2) for x in small_t.samples_ms]},
        "large": {"papers": large_t.papers, "build_s": round(large_t.build_seconds, 1),
                  "median_ms": round(large_t.median_ms, 2), "samples_ms": [round(x, 2) for x in large_t.samples_ms]},
        "ratio": round(large_t.median_ms / small_t.median_ms, 2),
    }
