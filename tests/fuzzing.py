"""What the fuzz tests share: their volume (short by default and in CI, long on request) and a
watchdog for true hangs.

    python -m pytest -m fuzz                             # the short run (part of every run, ~30 s)
    PAPERDIGEST_FUZZ=long python -m pytest -m fuzz       # 10,000 examples per test, inputs 20x larger
    PAPERDIGEST_FUZZ=long PAPERDIGEST_FUZZ_EXAMPLES=3000 python -m pytest -m fuzz -x   # 12-16 min here

The short run keeps the suite's profile (in CI: derandomized, the same examples every run). The long
run draws new examples every time and keeps what fails in .hypothesis/ (Hypothesis replays it first
next time); a failure found there belongs in the tests as an explicit @example or plain test.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

LONG = os.environ.get("PAPERDIGEST_FUZZ") == "long"
LONG_EXAMPLES = int(os.environ.get("PAPERDIGEST_FUZZ_EXAMPLES") or 10_000)
# Per example. The inputs are at most a few hundred kilobytes and parse in milliseconds; a deadline
# this generous fails only what is orders of magnitude too slow (a quadratic walk), never a busy CI.
DEADLINE = dt.timedelta(seconds=5)
# A parse that has not returned after this long is a hang: the watchdog interrupts it, so that the
# test fails with a traceback instead of running until CI's own timeout.
HANG_SECONDS = 60


def fuzz_settings(short: int) -> settings:
    """`short` examples in the default run; LONG_EXAMPLES with PAPERDIGEST_FUZZ=long."""
    if LONG:
        return settings(
            max_examples=LONG_EXAMPLES,
            derandomize=False,
            deadline=DEADLINE,
            suppress_health_check=list(HealthCheck),
            phases=tuple(Phase),
            print_blob=True,
        )
    return settings(
        max_examples=short,
        deadline=DEADLINE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


class Hang(Exception):
    """Raised in the main thread by the watchdog."""


@contextmanager
def watchdog(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Interrupt the block with `Hang` after `seconds` (SIGALRM: Unix, main thread)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- mutations of any file: what a disk, a network or an editor can do to it ----------------------------

ODD_INSERTS = [
    "\ufeff",  # a BOM in the middle
    "\u202e",  # right-to-left override
    "\u200f",  # right-to-left mark
    "\u0301\u0301",  # combining accents with nothing to combine with
    "\u2028",  # line separator
    "\x85",  # next line
    "\x0b\x0c",
    "\x00",
    "ſep 3",  # LATIN SMALL LETTER LONG S: "sep" to a case-insensitive Unicode match
    "\u212aov 3",  # KELVIN SIGN: "kov"
    "Mar \u0663",  # ARABIC-INDIC DIGIT THREE
    "Mar 20 \u0663",
    "• \u0663 authors",
    "·",
    "  • 3 authors\n·\nMar 20 2",
    "\n\n",
    "Subscribe",
    "Daily Papers\n\nFeb 30\n\n",
    '\\ud800"',
    '"\\udfff\\ud800"',
    "\\u0000",
    "<![",
    "<!--",
    "</",
    "<a ",
    "<article>",
    '<h3><a href="/papers/2401.00001">',
    "\U0001f600",
    "\ud800",  # written with errors="surrogatepass": invalid UTF-8
    "9" * 5000,
    "1e999",
    "[" * 3000,
]


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few random edits: cuts, byte flips, insertions and deletions of bytes, lines and
    odd Unicode."""
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 8))
        if kind == 0:
            data = data[:at]
        elif kind == 1 and at < len(data):
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif kind == 2:
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif kind == 3:
            data = data[:at] + data[at + draw(st.integers(1, 200)) :]
        elif kind == 4:
            odd = draw(st.sampled_from(ODD_INSERTS)).encode("utf-8", "surrogatepass")
            data = data[:at] + odd + data[at:]
        else:
            lines = data.split(b"\n")
            index = draw(st.integers(0, len(lines) - 1))
            if kind == 5:
                del lines[index]
            elif kind == 6:
                lines.insert(index, lines[draw(st.integers(0, len(lines) - 1))])
            elif kind == 7:
                other = draw(st.integers(0, len(lines) - 1))
                lines[index], lines[other] = lines[other], lines[index]
            else:
                lines.insert(index, b"")
            data = b"\n".join(lines)
    return data
