"""The benchmark harness: ingest and mail, ours against a floor, as whole processes in pairs.

    python benchmarks/bench.py                  # full: both engines, one core and two, 5 pairs each
    python benchmarks/bench.py --quick          # smaller data, 3 pairs each
    python benchmarks/bench.py --engine sqlite --cores 1 --parts ingest
    python benchmarks/bench.py --profile --parts mail --engine postgresql --cores 1
    python benchmarks/bench.py --parts startup --engine sqlite --cores 1   # start-up alone (in every run)

Every figure is a ratio of whole processes (start-up included) against a floor doing the same
work minimally, run in interleaved pairs (ours, floor, ours, floor, ...), each from a fresh
store, each pinned to the same cores; reported as the median and range of the pairs' ratios,
with CPU time (os.wait4: a process and the children it waited for, counted once). Nothing here
asserts a time: the report says PASS or FAIL per target; the exit status is 1 only when a check
fails (the stores disagree, a message went missing). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import bench_ingest
import bench_mail
import pairs
import reads
import smtp_sink
import stores

ROOT = Path(__file__).resolve().parent.parent
INGEST_LIMIT = 2.0  # backfill within 2x of the floor
MAIL_LIMIT = 3.0  # mail within 3x
PEAK_MB_LIMIT = 250.0
SCALE_LIMIT = 1.5
STARTUP_LIMIT_S = 0.35  # `paperdigest --version` and `status` (issue 13)
PARTS = ("ingest", "mail", "scale", "startup")  # start-up is measured whatever the parts; "startup" alone: only it


# ---------------------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="smaller data and 3 pairs (200 dumps, 100 digests)")
    add("--pairs", type=int, help="ours/floor pairs per figure (default 5; --quick 3; fewer than 3 is no figure)")
    add("--engine", choices=("sqlite", "postgresql", "both"),
        help="default: both when a PostgreSQL server can be started here, else sqlite")
    add("--cores", help="core counts to pin the processes to, e.g. 1 or 1,2 (default 1,2; 1 on a one-core machine)")
    add("--parts", default=",".join(PARTS), help=f"what to measure, of {','.join(PARTS)} (default all)")
    add("--dumps", type=int, help="ingest: dumps (default 2000; --quick 200)")
    add("--entries", type=int, default=200, help="ingest: entries per dump (default 200)")
    add("--papers", type=int, help="ingest: distinct papers (default 200000; --quick 20000)")
    add("--seed", type=int, default=20240601, help="ingest: seed of the synthetic dumps")
    add("--subscribers", type=int, help="mail: digests due (default 1000; --quick 100)")
    add("--mail-seed", type=int, default=7, help="mail: seed of the subscribers' topic choices")
    add("--scale-small", type=int, default=20_000, help="scale: papers in the small store")
    add("--scale-large", type=int, help="scale: papers in the large store (1000000; --quick 100000)")
    add("--scale-repeats", type=int, help="scale: timed dumps per store (default 15; --quick 7)")
    add("--scale-mid", type=int, help="scale, reads: papers in the middle store (default 200000; --quick 50000; "
        "outside small..large: their geometric mean)")
    add("--scale-rounds", type=int, default=3, help="scale, reads: timed rounds of every command on every store "
        "(default 3)")
    add("--smtp-sink", default=smtp_sink.binary(), help="Postfix's smtp-sink binary (default: found on this machine)")
    add("--out", type=Path, help="keep the generated dumps here (reused when the parameters match)")
    add("--json", action="store_true", help="print the report as one JSON object")
    add("--profile", action="store_true", help="instead: cProfile one run of ours per engine and core count")
    add("--top", type=int, default=25, help="--profile: functions listed per ordering (default 25)")
    args = parser.parse_args(argv)
    args.pairs = args.pairs or (3 if args.quick else 5)
    args.dumps = args.dumps or (200 if args.quick else 2_000)
    args.papers = args.papers or (20_000 if args.quick else 200_000)
    args.subscribers = args.subscribers or (100 if args.quick else 1_000)
    args.scale_large = args.scale_large or (100_000 if args.quick else 1_000_000)
    args.scale_repeats = args.scale_repeats or (7 if args.quick else 15)
    args.scale_mid = args.scale_mid or (50_000 if args.quick else 200_000)
    if not args.scale_small < args.scale_mid < args.scale_large:
        args.scale_mid = round((args.scale_small * args.scale_large) ** 0.5)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {','.join(PARTS)}")
    usable = sorted(os.sched_getaffinity(0))
    try:
        args.cores = sorted({int(c) for c in (args.cores or ("1,2" if len(usable) > 1 else "1")).split(",")})
    except ValueError:
        parser.error("--cores: a list of whole numbers, e.g. 1,2")
    if not args.cores or min(args.cores) < 1 or max(args.cores) > len(usable):
        parser.error(f"--cores: between 1 and {len(usable)} (the cores this process may use)")
    if min(args.pairs, args.dumps, args.entries, args.papers, args.subscribers) < 1:
        parser.error("--pairs, --dumps, --entries, --papers and --subscribers must be at least 1")
    if args.scale_small >= args.scale_large:
        parser.error("--scale-small must be smaller than --scale-large")
    return args


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def core_sets(counts: list[int]) -> dict[int, set[int]]:
    usable = sorted(os.sched_getaffinity(0))
    return {n: set(usable[:n]) for n in counts}


# ---------------------------------------------------------------------------------------- the machine


def _version_of(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine(engines: list[stores.Engine], sink: smtp_sink.SmtpSink | None) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": next((e.version() for e in engines if e.name == "postgresql"), None),
        "sqlalchemy": _version_of("sqlalchemy"),
        "psycopg": _version_of("psycopg"),
        "smtp_sink": f"Postfix {sink.version}" if sink is not None else None,
        "code": bench_mail.checkout_of_paperdigest(),
    }


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------------------------- the runs


@contextlib.contextmanager
def engines_for(choice: str | None, workdir: Path, notes: list[str]) -> Iterator[list[stores.Engine]]:
    sqlite_engine = stores.Sqlite(workdir)
    if choice == "sqlite":
        yield [sqlite_engine]
        return
    try:
        with stores.postgresql_server() as server:
            postgres = stores.Postgres(server)
            yield [postgres] if choice == "postgresql" else [sqlite_engine, postgres]
            return
    except RuntimeError as exc:
        if choice == "postgresql":
            raise SystemExit(f"bench: cannot start a PostgreSQL server: {exc}") from None
        notes.append(f"PostgreSQL not measured: no server could be started here ({exc}); "
                     "`apt-get install postgresql` for its server binaries")
        yield [sqlite_engine]


def sink_for(args: argparse.Namespace, workdir: Path, notes: list[str]) -> smtp_sink.SmtpSink | None:
    if args.smtp_sink and Path(args.smtp_sink).exists():
        return smtp_sink.SmtpSink(args.smtp_sink, workdir=workdir)
    if os.environ.get("PAPERDIGEST_REQUIRE_SINK") == "1":
        raise SystemExit(f"bench: {smtp_sink.INSTALL_HINT} (PAPERDIGEST_REQUIRE_SINK=1)")
    notes.append(f"mail not measured: {smtp_sink.INSTALL_HINT}")
    return None


def warm_up(env: dict[str, str], log_file: Path) -> None:
    """Start our program once, untimed: Python's bytecode caches are written before any pair."""
    pairs.run([*bench_mail.paperdigest_command(), "--version"], cpus=None, env=env, log=log_file)


def startup(env: dict[str, str], workdir: Path, cpus: set[int], repeats: int = 5) -> dict[str, Any]:
    """What starting alone costs, on one core: the interpreter (the floor), `paperdigest --version`
    and `paperdigest status` on a small store (the seeds ingested; untimed first, which creates it),
    interleaved in `repeats` rounds. Medians, absolute seconds on this machine."""
    store = f"sqlite:///{workdir / 'startup.db'}"
    pairs.run([*bench_mail.paperdigest_command(), "--db", store, "ingest", str(ROOT / "seeds")], cpus=None, env=env,
              log=workdir / "startup.log")
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "paperdigest --version": [*bench_mail.paperdigest_command(), "--version"],
                "paperdigest status": [*bench_mail.paperdigest_command(), "--db", store, "status"]}
    runs: dict[str, list[pairs.Run]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            runs[name].append(pairs.run(command, cpus=cpus, env=env, log=workdir / "startup.log"))
    return {name: {"wall_s": round(statistics.median(r.wall_s for r in done), 3),
                   "cpu_s": round(statistics.median(r.cpu_s for r in done), 3),
                   "peak_rss_mb": round(statistics.median(r.peak_rss_mb for r in done), 1),
                   "wall_each_s": [round(r.wall_s, 3) for r in done]}
            for name, done in runs.items()}


def measure_pairs(part: str, pair: Any, engine: stores.Engine, cores: int, cpus: set[int], count: int,
                  servers: list[int]) -> dict[str, Any]:
    """`count` pairs of one figure; the servers pinned to the same cores as the processes."""
    pairs.pin_tree(servers, cpus)
    runs = pairs.Pairs()
    problems: list[str] = []
    infos: list[dict[str, Any]] = []
    before = load()
    started = time.perf_counter()
    for index in range(count):
        ours, floor, trouble, info = pair(engine, cpus, index)
        runs.ours.append(ours)
        runs.floor.append(floor)
        problems += trouble
        infos.append(info)
        log(f"{part} {engine.name} {cores} core(s) pair {index + 1}/{count}: ours {ours.wall_s:.2f} s, "
            f"floor {floor.wall_s:.2f} s, ratio {ours.wall_s / floor.wall_s:.2f}x"
            + (f"; PROBLEM {'; '.join(trouble)}" if trouble else ""))
    return {"part": part, "engine": engine.name, "cores": cores, **runs.summary(),
            "runs": {"ours": [_run_dict(r) for r in runs.ours],
                     "floor": [_run_dict(r) for r in runs.floor]},
            "info": infos[-1] if infos else {}, "problems": problems,
            "load_before": before, "load_after": load(), "seconds": round(time.perf_counter() - started, 1)}


def _run_dict(run: pairs.Run) -> dict[str, Any]:
    return {"wall_s": round(run.wall_s, 3), "cpu_s": round(run.cpu_s, 3), "peak_rss_mb": round(run.peak_rss_mb, 1),
            "server_cpu_s": run.server_cpu_s}


def run_ingest(args: argparse.Namespace, workdir: Path, data_dir: Path, engines: list[stores.Engine],
               report: dict[str, Any]) -> None:
    params = bench_ingest.Params(args.seed, args.dumps, args.entries, args.papers)
    log(f"ingest: generating {args.dumps} dumps x {args.entries} entries over {args.papers} papers ...")
    setup, generated = bench_ingest.prepare(workdir, data_dir, params)
    report["ingest"] = {"params": asdict(params), "data": generated, "figures": []}
    for engine in engines:
        for cores, cpus in core_sets(args.cores).items():
            def pair(e: stores.Engine, c: set[int], i: int) -> Any:
                return bench_ingest.pair(setup, e, c, i)

            report["ingest"]["figures"].append(
                measure_pairs("ingest", pair, engine, cores, cpus, args.pairs, engine.server_pids()))


def run_mail(args: argparse.Namespace, workdir: Path, engines: list[stores.Engine], sink: smtp_sink.SmtpSink,
             report: dict[str, Any]) -> None:
    setup = bench_mail.prepare(workdir, args.subscribers, args.mail_seed, sink)
    report["mail"] = {"params": {"subscribers": args.subscribers, "seed": args.mail_seed}, "figures": []}
    for engine in engines:
        log(f"mail: ingesting the seeds into a {engine.name} store ...")
        base = bench_mail.prepared_store(setup, engine)
        for cores, cpus in core_sets(args.cores).items():
            def pair(e: stores.Engine, c: set[int], i: int, base: str = base) -> Any:
                return bench_mail.pair(setup, e, base, c, i)

            report["mail"]["figures"].append(
                measure_pairs("mail", pair, engine, cores, cpus, args.pairs, [sink.pid, *engine.server_pids()]))
        engine.drop(base)
    report["mail"]["params"]["papers_in_store"] = setup.papers


def run_scale(args: argparse.Namespace, workdir: Path, report: dict[str, Any]) -> None:
    log(f"scale: stores of {args.scale_small} and {args.scale_large} papers (SQLite, in this process) ...")
    report["scale"] = bench_ingest.measure_scale(workdir, args.seed, args.scale_small, args.scale_large,
                                                 args.entries, args.scale_repeats)
    sizes = [args.scale_small, args.scale_mid, args.scale_large]
    log(f"scale: the read commands and one ingest, whole processes, on stores of {sizes} papers ...")
    report["scale"]["reads"] = reads.measure(workdir / "reads", args.seed, sizes, args.scale_rounds, args.entries,
                                             min(core_sets(args.cores).values(), key=len))


# ---------------------------------------------------------------------------------------- targets and report


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[tuple[str, float | None, float, str]] = []
    for part, limit in (("ingest", INGEST_LIMIT), ("mail", MAIL_LIMIT)):
        for f in report.get(part, {}).get("figures", []):
            rows.append((f"{part} time, ours / floor, {f['engine']}, {f['cores']} core(s) (median)",
                         f["ratio"]["median"], limit, "x"))
    for f in report.get("ingest", {}).get("figures", []):
        if f["engine"] == "sqlite":
            rows.append((f"backfill peak RSS, {f['cores']} core(s) (largest process)",
                         f["ours"]["peak_rss_mb"], PEAK_MB_LIMIT, "MB"))
    if "scale" in report:
        rows.append(("per-dump ingest, large store / small store", report["scale"]["ratio"], SCALE_LIMIT, "x"))
        if "reads" in report["scale"]:
            rows += reads.targets(report["scale"]["reads"])
    for name, figure in report.get("startup", {}).items():
        if name != "python -c pass":
            rows.append((f"start-up: `{name}` (median wall, one core)", figure["wall_s"], STARTUP_LIMIT_S, "s"))
    def strict(name: str, unit: str) -> bool:  # "under" a limit, or "within" it
        return unit in ("MB", "s") or name.startswith(("ingest", "per-dump"))

    return [{"target": name, "value": value, "limit": limit, "unit": unit,
             "pass": value is not None and (value < limit if strict(name, unit) else value <= limit)}
            for name, value, limit, unit in rows]


def _range(spread: dict[str, Any], fmt: str = "{:.2f}") -> str:
    if spread["median"] is None:
        return "-"
    return f"{fmt.format(spread['median'])} [{fmt.format(spread['min'])}-{fmt.format(spread['max'])}]"


def figure_lines(f: dict[str, Any]) -> list[str]:
    ours, floor = f["ours"], f["floor"]
    head = f"  {f['engine']:<10} {f['cores']} core{'s' if f['cores'] > 1 else ' '}  "
    lines = [
        head + f"ratio {_range(f['ratio'])}x   CPU ratio {_range(f['cpu_ratio'])}x   ({f['pairs']} pairs, "
        f"{f['seconds']:.0f} s, load {f['load_before'][0]} -> {f['load_after'][0]})",
        f"{'':19}ours  wall {_range(ours['wall_s'])} s  CPU {_range(ours['cpu_s'])} s  "
        f"peak RSS {ours['peak_rss_mb']:.0f} MB"
        + (f"  servers' CPU {_range(ours['server_cpu_s'])} s" if ours["server_cpu_s"] else ""),
        f"{'':19}floor wall {_range(floor['wall_s'])} s  CPU {_range(floor['cpu_s'])} s  "
        f"peak RSS {floor['peak_rss_mb']:.0f} MB"
        + (f"  servers' CPU {_range(floor['server_cpu_s'])} s" if floor["server_cpu_s"] else ""),
    ]
    lines += [f"{'':19}PROBLEM {p}" for p in f["problems"]]
    return lines


def render_text(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "paperdigest benchmarks: whole processes, ours against a floor, in interleaved pairs",
        f"machine   {m['cpu']}, {m['cpus']} CPUs ({m['usable_cpus']} usable); {m['platform']}",
        f"          Python {m['python']}, SQLite {m['sqlite']}, {m['postgresql'] or 'no PostgreSQL'}, "
        f"SQLAlchemy {m['sqlalchemy']}, psycopg {m['psycopg']}, smtp-sink {m['smtp_sink'] or 'missing'}",
        f"code      paperdigest {m['code']['commit']}",
        f"load      {' '.join(map(str, report['load_before']))} before, {' '.join(map(str, report['load_after']))} "
        "after (1/5/15-minute averages; other jobs share this machine)",
        f"command   {report['command']}",
    ]
    lines += [f"note      {n}" for n in report["notes"]]
    if "startup" in report:
        lines.append("start-up  " + ", ".join(f"`{name}` {x['wall_s']:.2f} s wall "
                                              f"[{min(x['wall_each_s']):.2f}-{max(x['wall_each_s']):.2f}], "
                                              f"{x['cpu_s']:.2f} s CPU, {x['peak_rss_mb']:.0f} MB"
                                              for name, x in report["startup"].items())
                     + " (medians [range] of 5, interleaved, one core)")
    if "ingest" in report:
        p, d = report["ingest"]["params"], report["ingest"]["data"]
        lines += ["", f"ingest: `paperdigest --db URL backfill DIR --json` against benchmarks/floor.py; "
                  f"{p['dumps']} dumps x {p['entries']} entries over {p['papers']} papers "
                  f"({d['bytes'] / 1e6:.1f} MB); each pair into fresh stores"]
        for f in report["ingest"]["figures"]:
            lines += figure_lines(f)
            info = f["info"]
            lines.append(f"{'':19}stores agree: {info.get('stores_agree')} {info.get('store')}; "
                         f"same tables and indexes: {info.get('schemas_agree')}")
    if "mail" in report:
        p = report["mail"]["params"]
        lines += ["", f"mail: `paperdigest --config C --db URL send` ({p['subscribers']} digests due) against "
                  "benchmarks/floor_mail.py (the same messages, smtplib, one connection); both to smtp-sink"]
        for f in report["mail"]["figures"]:
            lines += figure_lines(f)
            lines.append(f"{'':19}{f['info'].get('messages')} messages of "
                         f"{f['info'].get('message_bytes_mean', 0) / 1024:.1f} KiB on average")
    if "scale" in report:
        s = report["scale"]
        lines += ["", f"scale: `apply` of the same {s['entries_per_dump']}-entry dumps (SQLite, in-process, median "
                  f"of {s['dumps']} after a warm-up)",
                  f"  store of {s['small']['papers']:>9,} papers: {s['small']['median_ms']:8.2f} ms/dump",
                  f"  store of {s['large']['papers']:>9,} papers: {s['large']['median_ms']:8.2f} ms/dump",
                  f"  ratio large/small: {s['ratio']}x"]
        if "reads" in s:
            lines += ["", *reads.lines(s["reads"])]
    lines += ["", "targets (medians; PASS/FAIL is information, nothing asserts it)"]
    for t in report["targets"]:
        sign = "<" if t["unit"] in ("MB", "s") or t["target"].startswith(("ingest", "per-dump")) else "<="
        lines.append(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['value']} {t['unit']} "
                     f"(target {sign} {t['limit']} {t['unit']})")
    if report["pairs"] < 3:
        lines.append(f"  (only {report['pairs']} pair(s) per figure: a smoke run, not figures to report)")
    checks = report["problems"]
    lines.append(f"checks    {'ok' if not checks else 'FAILED: ' + '; '.join(checks)}")
    lines.append(f"took      {report['wall_s']:.0f} s")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- profile

PHASES = {
    "ingest": [
        ("backfill (the command)", "job.py", "backfill"),
        ("apply (diff + write, per dump)", "write.py", "apply"),
        ("parse_dump (in this process)", "__init__.py", "parse_dump"),
        ("waiting for the parsing worker", "connection.py", "recv"),
        ("the diff", "diff.py", "diff_rows"),
        ("the writes", "write.py", "_write"),
        ("reading known papers", "papers.py", "paper_rows_by_identity"),
    ],
    "mail": [
        ("load the config", "config.py", "load"),
        ("queue_due (select, render, compose, store)", "job.py", "queue_due"),
        ("select (batched reads, ranking)", "selection.py", "build_many"),
        ("  of which the ranking", "ranking.py", "top"),
        ("render text + HTML", "render.py", "render_both"),
        ("build the MIME message", "message.py", "build_message"),
        ("outbox reserve + fill", "outbox.py", "fill"),
        ("deliver_due (claim, send, mark)", "outbox.py", "deliver_due"),
        ("smtplib sendmail", "smtplib.py", "sendmail"),
    ],
}


def profile_text(part: str, stats_file: Path, wall: float, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=out)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    main = sum(entry[3] for (file, _, name), entry in raw.items() if file.endswith("cli.py") and name == "main")
    out.write(f"wall {wall:.2f} s under the profiler (which slows Python code down); profiled {total:.2f} s, of "
              f"which outside `main` (imports, module set-up) {total - main:.2f} s\n")
    for label, suffix, function in PHASES[part]:
        cumulative = sum(entry[3] for (file, _, name), entry in raw.items()
                         if file.endswith(suffix) and name == function)
        if cumulative:
            out.write(f"  {label:<46} {cumulative:8.2f} s  {100 * cumulative / total:5.1f}%\n")
    stats.strip_dirs()
    for order in ("tottime", "cumulative"):
        out.write(f"\n--- by {order} ---\n")
        stats.sort_stats(order).print_stats(top)
    return out.getvalue()


def run_profiles(args: argparse.Namespace, workdir: Path, data_dir: Path, engines: list[stores.Engine],
                 sink: smtp_sink.SmtpSink | None) -> str:
    texts = []
    for part in [p for p in args.parts if p in ("ingest", "mail")]:
        if part == "mail" and sink is None:
            continue
        for engine in engines:
            if part == "ingest":
                params = bench_ingest.Params(args.seed, args.dumps, args.entries, args.papers)
                setup, _ = bench_ingest.prepare(workdir, data_dir, params)
                env, base = setup.env, ""
            else:
                assert sink is not None
                mail_setup = bench_mail.prepare(workdir, args.subscribers, args.mail_seed, sink)
                env, base = mail_setup.env, bench_mail.prepared_store(mail_setup, engine)
            for cores, cpus in core_sets(args.cores).items():
                pairs.pin_tree([*engine.server_pids(), *([sink.pid] if sink else [])], cpus)
                url = engine.copy(base, "profiled") if base else engine.fresh("profiled")
                command = (bench_ingest.ours_command(setup, url) if part == "ingest"
                           else bench_mail.ours_command(mail_setup, url))
                stats_file = workdir / "profile.out"
                profiled = [sys.executable, "-m", "cProfile", "-o", str(stats_file),
                            *(["-m", "paperdigest"] if command[0] != sys.executable else []),
                            *command[1:]]
                log(f"profile: {part} {engine.name} {cores} core(s) ...")
                run = pairs.run(profiled, cpus=cpus, env=env, log=workdir / "profile.log")
                engine.drop(url)
                texts.append(f"===== {part}, {engine.name}, {cores} core(s): {' '.join(command)}\n"
                             + profile_text(part, stats_file, run.wall_s, args.top))
            if base:
                engine.drop(base)
    return "\n".join(texts)


# ---------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace, argv: list[str]) -> int:
    started = time.perf_counter()
    notes: list[str] = []
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        # Measured as installed: pip compiles a package's bytecode at install, and an editable one
        # writes it at its first start (the warm-up). Without the cache our modules would be compiled
        # again by every process measured (about 0.04 s of `status`'s start-up), the floor's never.
        notes.append("PYTHONDONTWRITEBYTECODE is set here: unset for the measured processes (bytecode cached)")
    report: dict[str, Any] = {"load_before": load(), "quick": args.quick, "pairs": args.pairs,
                              "command": " ".join(["python benchmarks/bench.py", *argv])}
    workdir = Path(tempfile.mkdtemp(prefix="paperdigest-bench-"))
    data_dir = args.out or workdir
    data_dir.mkdir(parents=True, exist_ok=True)
    sink: smtp_sink.SmtpSink | None = None
    try:
        with engines_for(args.engine, workdir, notes) as engines:
            if "mail" in args.parts:
                sink = sink_for(args, workdir, notes)
            report["machine"] = machine(engines, sink)
            warm_up(bench_mail.isolated_env(workdir), workdir / "warm-up.log")
            if args.profile:
                print(run_profiles(args, workdir, data_dir, engines, sink))
                return 0
            report["startup"] = startup(bench_mail.isolated_env(workdir), workdir, min(core_sets(args.cores).values(),
                                                                                       key=len))
            if "ingest" in args.parts:
                run_ingest(args, workdir, data_dir, engines, report)
            if "mail" in args.parts and sink is not None:
                run_mail(args, workdir, engines, sink, report)
        if "scale" in args.parts:
            run_scale(args, workdir, report)
    finally:
        if sink is not None:
            sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report["notes"] = notes
    report["load_after"] = load()
    report["targets"] = targets(report)
    report["problems"] = [p for part in ("ingest", "mail") for f in report.get(part, {}).get("figures", [])
                          for p in f["problems"]]
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report) if args.json else render_text(report))
    return 1 if report["problems"] else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run(parse_args(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
