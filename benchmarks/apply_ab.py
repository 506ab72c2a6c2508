"""One dump's `apply` in a small and a larger store (scale.measure), for comparing two checkouts:

    /before/.venv/bin/python benchmarks/apply_ab.py /before 300000
    /after/.venv/bin/python benchmarks/apply_ab.py /after 300000

CHECKOUT is the checkout whose benchmarks/scale.py (and, through the interpreter, whose
paperdigest) is measured; run them one after the other, pinned to the same core (taskset).
Prints the median milliseconds a dump in each store (9 dumps after a warm-up) and their ratio.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main() -> None:
    root, large = Path(sys.argv[1]), int(sys.argv[2])
    sys.path.insert(0, str(root / "benchmarks"))
    import scale  # noqa: PLC0415  (the checkout's own, found through the path above)

    with tempfile.TemporaryDirectory() as workdir:
        small_t, large_t = scale.measure(Path(workdir), 20240601, 20_000, large, 200, 9)
    print(f"{root}: {small_t.papers} papers {small_t.median_ms:.1f} ms, {large_t.papers} papers "
          f"{large_t.median_ms:.1f} ms, ratio {large_t.median_ms / small_t.median_ms:.2f}", flush=True)


if __name__ == "__main__":
    main()
