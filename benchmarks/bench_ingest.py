"""Ingest benchmark: our backfill against a plain-sqlite3 floor, peak memory, scale independence.

    python benchmarks/bench_ingest.py [--quick] [--dumps N] [--entries N] [--papers N] [--out DIR] [--json]
    python benchmarks/bench_ingest.py --quick --profile     # cProfile of our backfill instead

Timing runs never assert anything: the report says PASS or FAIL against each target and the
exit status is 0 either way (non-zero only when the benchmark itself breaks).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import floor
import synth

# scale, SQLAlchemy and daemon are imported where used, so the floor's child process never loads them.
HERE = Path(__file__).resolve()
MARKER = ".bench-ingest.json"  # hidden: the tool skips it when it reads the dumps directory
TIME_RATIO_LIMIT = 2.0
PEAK_MB_LIMIT = 250.0
SCALE_RATIO_LIMIT = 1.5


@dataclass(frozen=True, slots=True)
class Params:
    seed: int
    dumps: int
    entries: int
    papers: int
    scale_small: int
    scale_large: int
    scale_repeats: int


# ---------------------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute (200 dumps, 20k papers)")
    parser.add_argument("--dumps", type=int, help="dumps to generate (default 2000; --quick 200)")
    parser.add_argument("--entries", type=int, default=200, help="entries per dump (default 200)")
    parser.add_argument("--papers", type=int, help="distinct papers (default 200000; --quick 20000)")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed (default 20240601)")
    parser.add_argument("--scale-small", type=int, default=20_000, help="papers in the small scale store")
    parser.add_argument("--scale-large", type=int, help="papers in the large scale store (1000000; --quick 100000)")
    parser.add_argument("--scale-repeats", type=int, help="timed dumps per scale store (default 15; --quick 7)")
    parser.add_argument("--out", type=Path, help="keep generated data here (reused when the parameters match)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--profile", action="store_true", help="profile our backfill (cProfile) instead")
    parser.add_argument("--top", type=int, default=25, help="functions to list with --profile (default 25)")
    parser.add_argument("--worker", choices=("ours", "floor", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def params_from(args: argparse.Namespace) -> Params:
    return Params(
        seed=args.seed,
        dumps=args.dumps or (200 if args.quick else 2_000),
        entries=args.entries,
        papers=args.papers or (20_000 if args.quick else 200_000),
        scale_small=args.scale_small,
        scale_large=args.scale_large or (100_000 if args.quick else 1_000_000),
        scale_repeats=args.scale_repeats or (7 if args.quick else 15),
    )


def corpus_of(params: Params) -> synth.Corpus:
    return synth.Corpus(params.seed, params.papers, params.dumps, params.entries)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ workers
# Each measured run is a fresh interpreter, so its peak RSS is its own.


def worker_ours(data: Path, db: Path) -> dict[str, Any]:
    from paperdigest.ingest.job import Failure, backfill  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)
    from paperdigest.store.engine import open_engine  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)

    engine = open_engine(f"sqlite:///{db}")
    entries = dumps = failures = 0
    start = time.perf_counter()
    for outcome in backfill(engine, [str(data)]):
        if isinstance(outcome, Failure):
            failures += 1
            log(f"ours: {outcome.source}: {outcome.error}")
            continue
        dumps += 1
        entries += outcome.entries
    seconds = time.perf_counter() - start
    engine.dispose()
    # The backfill forks a worker that parses ahead; it has been waited for by now.
    parser = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": seconds, "dumps": dumps, "entries": entries, "failures": failures,
            "parser_rss_mb": round(_maxrss_mb(parser.ru_maxrss), 1),
            "parser_cpu_s": round(parser.ru_utime + parser.ru_stime, 2)}


def worker_floor(params: Params, db: Path) -> dict[str, Any]:
    result = floor.run(corpus_of(params), db)
    return {"seconds": result.seconds, "dumps": result.dumps, "entries": result.entries, "failures": 0}


def worker_baseline() -> dict[str, Any]:
    """The interpreter with our package and SQLAlchemy imported: what any run costs before data."""
    import paperdigest.ingest.job  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)
    import paperdigest.store.engine  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)

    return {"modules": len(sys.modules), "loaded": bool(paperdigest.ingest.job and paperdigest.store.engine)}


def run_worker(args: argparse.Namespace) -> int:
    if args.worker == "ours":
        result = worker_ours(args.data, args.db)
    elif args.worker == "floor":
        result = worker_floor(params_from(args), args.db)
    else:
        result = worker_baseline()
    print(json.dumps(result))
    return 0


def _maxrss_mb(maxrss: int) -> float:
    """ru_maxrss is in kilobytes on Linux, in bytes on macOS."""
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def in_child(worker: str, extra: list[str]) -> dict[str, Any]:
    """Run a worker in a child interpreter; add its peak RSS (the child's own rusage, via wait4)."""
    command = [sys.executable, str(HERE), "--worker", worker, *extra]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    # wait4 returns this child's rusage alone (RUSAGE_CHILDREN would be the max over every child so far).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {worker} failed with status {proc.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(_maxrss_mb(usage.ru_maxrss), 1)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime + result.get("parser_cpu_s", 0.0), 2)
    # Cross-check: the largest peak of any child so far; equals ours, the largest child, once ours has run.
    result["rusage_children_max_mb"] = round(_maxrss_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss), 1)
    return result


def corpus_flags(params: Params) -> list[str]:
    return ["--seed", str(params.seed), "--dumps", str(params.dumps), "--entries", str(params.entries),
            "--papers", str(params.papers)]


# ----------------------------------------------------------------------------------------- the data


def prepare_workdir(out: Path | None) -> tuple[Path, bool]:
    """The directory for dumps and stores, and whether to delete it at the end."""
    if out is None:
        return Path(tempfile.mkdtemp(prefix="paperdigest-bench-")), True
    out.mkdir(parents=True, exist_ok=True)
    return out, False


def generate(params: Params, workdir: Path) -> dict[str, Any]:
    """Write the dumps (or reuse those of an earlier run with the same parameters)."""
    dumps_dir = workdir / "dumps"
    marker = dumps_dir / MARKER
    wanted = asdict(params) | {"scale_small": None, "scale_large": None, "scale_repeats": None}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        found = [p for p in dumps_dir.iterdir() if not p.name.startswith(".")]
        return {"seconds": 0.0, "reused": True, "files": len(found), "bytes": sum(p.stat().st_size for p in found)}
    if dumps_dir.exists():
        if not marker.exists() and any(dumps_dir.iterdir()):
            raise SystemExit(f"{dumps_dir} holds files this benchmark did not write; choose another --out")
        shutil.rmtree(dumps_dir)
    start = time.perf_counter()
    written, _ = synth.write_dumps(corpus_of(params), dumps_dir)
    marker.write_text(json.dumps(wanted))
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in dumps_dir.iterdir() if not p.name.startswith("."))
    return {"seconds": round(seconds, 2), "reused": False, "files": written, "bytes": size}


def check_keys(params: Params, sample: int = 2_000) -> None:
    """The floor and the store fillers fold titles with synth.fast_key: it must agree with ours."""
    from paperdigest.ingest.identity import title_key  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)

    step = max(1, params.papers // sample)
    for index in range(0, params.papers, step):
        paper = synth.make_paper(params.seed, index)
        if title_key(paper.title) != paper.key:
            raise SystemExit(f"synthetic title {paper.title!r}: fast key {paper.key!r} != {title_key(paper.title)!r}")


def fresh_db(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def store_counts(db: Path, paper_table: str = "paper") -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        papers, upvotes = conn.execute(f"SELECT count(*), coalesce(sum(upvotes), 0) FROM {paper_table}").fetchone()
        sightings = conn.execute("SELECT count(*) FROM sighting").fetchone()[0]
        return {"papers": int(papers), "sightings": int(sightings), "upvotes_sum": int(upvotes)}
    finally:
        conn.close()


# -------------------------------------------------------------------------------------- measurements


def rate(result: dict[str, Any]) -> float:
    return result["entries"] / result["seconds"] if result["seconds"] > 0 else 0.0


def measure_backfill(params: Params, workdir: Path) -> dict[str, Any]:
    baseline = in_child("baseline", [])
    log("our backfill (child process) ...")
    ours_db = fresh_db(workdir / "ours.db")
    ours = in_child("ours", ["--data", str(workdir / "dumps"), "--db", str(ours_db)])
    log(f"ours: {ours['entries']} entries in {ours['seconds']:.1f} s; the floor ...")
    floor_db = fresh_db(workdir / "floor.db")
    low = in_child("floor", [*corpus_flags(params), "--db", str(floor_db)])
    ours |= {"seconds": round(ours["seconds"], 3), "entries_per_s": round(rate(ours)), "store": store_counts(ours_db)}
    low |= {"seconds": round(low["seconds"], 3), "entries_per_s": round(rate(low)), "store": store_counts(floor_db)}
    return {
        "baseline_rss_mb": baseline["peak_rss_mb"],
        "ours": ours,
        "floor": low,
        "time_ratio": round(ours["seconds"] / low["seconds"], 2) if low["seconds"] > 0 else None,
        "stores_agree": ours["store"] == low["store"],
    }


def measure_scale(params: Params, workdir: Path) -> dict[str, Any]:
    import scale  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)

    log(f"scale: building stores of {params.scale_small} and {params.scale_large} papers ...")
    small, large = scale.measure(workdir, params.seed, params.scale_small, params.scale_large, params.entries,
                                 params.scale_repeats)
    return {
        "entries_per_dump": params.entries,
        "dumps": params.scale_repeats,
        "small": {"papers": small.papers, "build_s": round(small.build_seconds, 1),
                  "median_ms": round(small.median_ms, 2), "samples_ms": [round(x, 2) for x in small.samples_ms]},
        "large": {"papers": large.papers, "build_s": round(large.build_seconds, 1),
                  "median_ms": round(large.median_ms, 2), "samples_ms": [round(x, 2) for x in large.samples_ms]},
        "ratio": round(large.median_ms / small.median_ms, 2),
    }


def machine() -> dict[str, Any]:
    import sqlalchemy  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],  # other work on the machine skews timings
    }


def targets(backfill: dict[str, Any], scaled: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        ("backfill time, ours / floor", backfill["time_ratio"], TIME_RATIO_LIMIT, "x"),
        ("backfill peak RSS, ours (with its parse worker)",
         round(backfill["ours"]["peak_rss_mb"] + backfill["ours"].get("parser_rss_mb", 0.0), 1), PEAK_MB_LIMIT, "MB"),
        ("per-dump ingest, large store / small store", scaled["ratio"], SCALE_RATIO_LIMIT, "x"),
    ]
    return [{"target": name, "value": value, "limit": limit, "unit": unit,
             "pass": value is not None and value < limit} for name, value, limit, unit in rows]


# ------------------------------------------------------------------------------------------- report


def render_text(report: dict[str, Any]) -> str:
    m, p, g = report["machine"], report["params"], report["generate"]
    b, s = report["backfill"], report["scale"]
    ours, low = b["ours"], b["floor"]
    made = "reused" if g["reused"] else f"generated in {g['seconds']:.1f} s"
    lines = [
        "paperdigest ingest benchmark",
        f"machine     {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, SQLite {m['sqlite']}, "
        f"SQLAlchemy {m['sqlalchemy']}",
        f"load        {' '.join(map(str, report['load_before']))} before, "
        f"{' '.join(map(str, m['load_average']))} after (1/5/15-minute load averages; 2 = both cores busy)",
        f"parameters  {p['dumps']} dumps x {p['entries']} entries over {p['papers']} papers, seed {p['seed']}"
        f"{' (--quick)' if report['quick'] else ''}",
        f"data        {g['files']} files, {g['bytes'] / 1e6:.1f} MB ({made})",
        "",
        "backfill (each in its own child process)",
        f"  ours   paperdigest.ingest.job.backfill: read + parse + diff + write   {ours['seconds']:8.2f} s  "
        f"{ours['entries_per_s']:>8,} entries/s  peak RSS {ours['peak_rss_mb']:6.1f} MB",
        f"  floor  plain sqlite3 executemany, rows already parsed     {low['seconds']:8.2f} s  "
        f"{low['entries_per_s']:>8,} entries/s  peak RSS {low['peak_rss_mb']:6.1f} MB",
        "         (the floor is the floor of *writing*: it gets parsed rows with title keys computed,",
        "          and only its transactions are timed; same pragmas and secondary indexes)",
        f"         ours forks a worker that parses ahead: its peak RSS {ours.get('parser_rss_mb', 0.0):.1f} MB "
        "(pages shared with the parent counted twice);",
        f"         CPU time ours {ours['cpu_s']:.2f} s (both processes), floor {low['cpu_s']:.2f} s (whole child)",
        f"  interpreter + imports alone: peak RSS {b['baseline_rss_mb']:.1f} MB",
        f"  ratio ours/floor in time: {b['time_ratio']}x",
        f"  stores agree (papers, sightings, sum of upvotes): {b['stores_agree']} "
        f"ours {ours['store']} floor {low['store']}",
        "",
        f"scale independence (paperdigest.ingest.apply of the same {s['entries_per_dump']}-entry dumps, "
        f"median of {s['dumps']}, after one warm-up)",
        f"  store of {s['small']['papers']:>9,} papers: median {s['small']['median_ms']:8.2f} ms/dump  "
        f"(built in {s['small']['build_s']} s)",
        f"  store of {s['large']['papers']:>9,} papers: median {s['large']['median_ms']:8.2f} ms/dump  "
        f"(built in {s['large']['build_s']} s)",
        f"  ratio large/small: {s['ratio']}x",
        "",
        "targets",
    ]
    for t in report["targets"]:
        lines.append(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['value']} {t['unit']} "
                     f"(target < {t['limit']} {t['unit']})")
    lines.append(f"total wall time {report['wall_s']:.1f} s")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ profile


def profile(params: Params, workdir: Path, top: int) -> str:
    """Our backfill under cProfile, in this process, over the generated dumps."""
    from paperdigest.ingest.job import backfill  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)
    from paperdigest.store.engine import open_engine  # noqa: PLC0415  (lazy on purpose: the floor's child never loads it)

    engine = open_engine(f"sqlite:///{fresh_db(workdir / 'profile.db')}")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in backfill(engine, [str(workdir / "dumps")]):
        pass
    profiler.disable()
    engine.dispose()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> int:
    params = params_from(args)
    if params.scale_small >= params.scale_large:
        raise SystemExit("--scale-small must be smaller than --scale-large")
    load_before = [round(x, 2) for x in os.getloadavg()]
    workdir, temporary = prepare_workdir(args.out)
    started = time.perf_counter()
    try:
        check_keys(params)
        log(f"generating {params.dumps} dumps x {params.entries} entries in {workdir} ...")
        generated = generate(params, workdir)
        if args.profile:
            print(profile(params, workdir, args.top))
            return 0
        backfilled = measure_backfill(params, workdir)
        scaled = measure_scale(params, workdir)
        report = {
            "machine": machine(), "load_before": load_before, "params": asdict(params), "quick": args.quick,
            "generate": generated,
            "backfill": backfilled, "scale": scaled, "targets": targets(backfilled, scaled),
            "wall_s": round(time.perf_counter() - started, 1),
        }
        report["all_pass"] = all(t["pass"] for t in report["targets"])
        print(json.dumps(report) if args.json else render_text(report))
        return 0
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
