"""Two installs of paperdigest, `status` alternately, as whole processes on the core this runs on.

    taskset -c 1 python benchmarks/ab_status.py BEFORE/bin/paperdigest AFTER/bin/paperdigest [--runs 20]

For a change too small for the harness's five start-up rounds to tell apart on a shared machine:
N interleaved pairs (before, after, before, ...), wall and CPU (os.wait4: the process, once), the
median and minimum of each. Both commands read the same store ($PAPERDIGEST_DB, or their default)
and run with bytecode caches, as installed commands do. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    figures: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
    for _ in range(args.runs):
        for name in ("before", "after"):
            started = time.perf_counter()
            proc = subprocess.Popen([getattr(args, name), "status"], stdout=subprocess.DEVNULL, env=env)
            _, _, usage = os.wait4(proc.pid, 0)
            figures[name].append((time.perf_counter() - started, usage.ru_utime + usage.ru_stime))
    for name, runs in figures.items():
        wall = [w for w, _ in runs]
        cpu = [c for _, c in runs]
        print(f"{name:6}  wall median {statistics.median(wall):.3f} s, min {min(wall):.3f} s;"
              f"  CPU median {statistics.median(cpu):.3f} s, min {min(cpu):.3f} s  ({len(runs)} runs)")


if __name__ == "__main__":
    main()
