"""Whole processes, timed and counted, in interleaved pairs: ours, floor, ours, floor, ...

One run is one process started the way a user starts it, pinned to the cores of the pair
(`os.sched_setaffinity` in the child before exec). Its wall time is `time.perf_counter` around
the whole of it, start-up and exit included; its CPU time (user + system) and peak RSS come from
`os.wait4`, which reports the process together with the children it waited for (backfill's
forked parser), so each CPU second is counted once. The CPU time of the servers it talked to
(PostgreSQL, smtp-sink) is read from /proc before and after, and reported apart.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system of the process and the children it waited for (wait4)
    peak_rss_mb: float  # the largest of the process and its waited-for children
    server_cpu_s: float | None  # the servers' CPU during the run (None: no server involved)


@dataclass(slots=True)
class Pairs:
    """The runs of one figure: ours[i] and floor[i] ran one after the other."""

    ours: list[Run] = field(default_factory=list)
    floor: list[Run] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ratios = [o.wall_s / f.wall_s for o, f in zip(self.ours, self.floor, strict=True)]
        cpu_ratios = [o.cpu_s / f.cpu_s for o, f in zip(self.ours, self.floor, strict=True) if f.cpu_s > 0]
        return {
            "pairs": len(ratios),
            "ratio": _spread(ratios),
            "cpu_ratio": _spread(cpu_ratios),
            "ours": _side(self.ours),
            "floor": _side(self.floor),
        }


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"median": None, "min": None, "max": None, "each": []}
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "each": [round(v, 3) for v in values]}


def _side(runs: list[Run]) -> dict[str, Any]:
    servers = [r.server_cpu_s for r in runs if r.server_cpu_s is not None]
    return {
        "wall_s": _spread([r.wall_s for r in runs]),
        "cpu_s": _spread([r.cpu_s for r in runs]),
        "peak_rss_mb": round(max(r.peak_rss_mb for r in runs), 1) if runs else None,
        "server_cpu_s": _spread(servers) if servers else None,
    }


def _maxrss_mb(maxrss: int) -> float:
    """ru_maxrss is in kilobytes on Linux, in bytes on macOS."""
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    chosen = set(cpus)

    def pin() -> None:
        os.sched_setaffinity(0, chosen)

    return pin


def run(
    command: Sequence[str],
    *,
    cpus: set[int] | None,
    env: dict[str, str],
    log: Path,
    servers: Sequence[int] = (),
) -> Run:
    """Run `command` to its end, stdout and stderr into `log`; RuntimeError when it fails.

    The process is started by the launcher (below), not by the caller: a process's peak RSS
    starts from that of the process it was forked from (the kernel keeps the high-water mark
    across exec), and the harness holds SQLAlchemy, our package and 50 MB of messages."""
    global _launcher  # noqa: PLW0603  (one launcher per harness, started on first use)
    if _launcher is None or _launcher.poll() is not None:
        _launcher = subprocess.Popen([sys.executable, "-S", __file__, "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env={})
    assert _launcher.stdin is not None and _launcher.stdout is not None
    request = {"command": list(command), "cpus": sorted(cpus) if cpus is not None else None, "env": env,
               "log": str(log), "servers": list(servers)}
    _launcher.stdin.write(json.dumps(request) + "\n")
    _launcher.stdin.flush()
    answer = json.loads(_launcher.stdout.readline() or '{"error": "the launcher died"}')
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return Run(**answer)


_launcher: subprocess.Popen[str] | None = None


def run_here(
    command: Sequence[str],
    *,
    cpus: set[int] | None,
    env: dict[str, str],
    log: Path,
    servers: Sequence[int] = (),
) -> Run:
    """Run `command` from this process: what the launcher does for each request."""
    before = tree_cpu(servers) if servers else None
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(command), env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=pinned(cpus))  # noqa: PLW1509  (the launcher has no threads)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    server_cpu = tree_cpu(servers) - before if before is not None else None
    if proc.returncode != 0:
        tail = log.read_text("utf-8", "replace")[-2000:]
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{tail}")
    return Run(wall, usage.ru_utime + usage.ru_stime, _maxrss_mb(usage.ru_maxrss),
               None if server_cpu is None else round(server_cpu, 3))


def serve() -> int:
    """The launcher: a small interpreter (no site packages) that runs each requested command."""
    for line in sys.stdin:
        request = json.loads(line)
        try:
            done = run_here(request["command"], cpus=set(request["cpus"]) if request["cpus"] is not None else None,
                            env=request["env"], log=Path(request["log"]), servers=request["servers"])
            answer: dict[str, Any] = asdict(done)
        except Exception as exc:
            answer = {"error": str(exc)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------------- servers' CPU


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system + reaped children's user + system) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICK


def descendants(roots: Sequence[int]) -> list[int]:
    """The roots and every live process under them."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            found = _stat(int(name))
            if found is not None:
                parents[int(name)] = found[0]
    tree = {r for r in roots if r in parents}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sorted(tree)


def tree_cpu(roots: Sequence[int]) -> float:
    """CPU seconds used so far by the process trees under `roots`. A child's time moves into its
    parent's reaped-children count when it exits, so the sum over the live tree never loses it."""
    total = 0.0
    for pid in descendants(roots):
        found = _stat(pid)
        if found is not None:
            total += found[1]
    return total


def pin_tree(roots: Sequence[int], cpus: set[int]) -> None:
    """Pin running servers (and so the processes they fork later) to `cpus`."""
    for pid in descendants(roots):
        with contextlib.suppress(OSError):  # gone meanwhile
            os.sched_setaffinity(pid, cpus)


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        sys.exit("usage: pairs.py --serve (the benchmark's launcher, started by benchmarks/bench.py)")
    sys.exit(serve())
