"""Headless Chromium for the tests that need a real browser, and for docs/digest.png.

Found through PAPERDIGEST_CHROMIUM (a path), else `chromium` on PATH, else /usr/bin/chromium.
Without it those tests are skipped with a reason saying how to install it, unless
PAPERDIGEST_REQUIRE_BROWSER=1 (set by .ci/run), which turns a missing browser into a failure.

Only file:// pages; the flags keep Chromium off the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_ENV = "PAPERDIGEST_CHROMIUM"
REQUIRE_ENV = "PAPERDIGEST_REQUIRE_BROWSER"
INSTALL_HINT = "install it with `apt-get update && apt-get install -y chromium` (as root), or set PAPERDIGEST_CHROMIUM"
DEFAULT = Path("/usr/bin/chromium")
TIMEOUT = 60
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> Path | str:
    """The Chromium executable, or a sentence saying where none was found."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        path = Path(named)
        return path if _executable(path) else f"{CHROMIUM_ENV}={named} is not an executable"
    on_path = shutil.which("chromium")
    if on_path:
        return Path(on_path)
    return DEFAULT if _executable(DEFAULT) else f"no `chromium` on PATH and no {DEFAULT}"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def chromium_or_skip() -> Path:
    """The Chromium executable; when there is none, skip the test (fail it under PAPERDIGEST_REQUIRE_BROWSER=1)."""
    found = find_chromium()
    if isinstance(found, Path):
        return found
    reason = f"Chromium not found: {found}; {INSTALL_HINT}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} [{REQUIRE_ENV}=1 forbids skipping]")
    pytest.skip(reason)


def run_chromium(binary: Path, page: Path, profile: Path, *extra: str, width: int = 600, height: int = 900) -> str:
    """Open `page` in a fresh profile with the window `width` x `height`; returns Chromium's stdout."""
    command = [
        str(binary),
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        *extra,
        page.as_uri(),
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"chromium did not finish within {TIMEOUT} s: {' '.join(command)}") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout
