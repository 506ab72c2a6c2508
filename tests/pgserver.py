"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder, started on a free
loopback port with its own socket folder, fsync off, removed at the end.

initdb refuses to run as root, so as root the server runs as an unprivileged user (`nobody`,
or PAPERDIGEST_PG_USER). `python -m tests.pgserver` starts one and prints its URL (for trying
things by hand); the tests start one per session through `server()`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def find_bin(name: str) -> str | None:
    """A PostgreSQL server binary: in $PAPERDIGEST_PG_BIN when set (only there), else on PATH, else
    Debian's /usr/lib/postgresql/<version>/bin."""
    folder = os.environ.get("PAPERDIGEST_PG_BIN")
    if folder:
        path = Path(folder) / name
        return str(path) if path.is_file() else None
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version, reverse=True)
    return candidates[0] if candidates else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PgServer:
    folder: Path
    port: int
    user: str  # the database superuser

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"


def _run_as(user: str | None, command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


@contextmanager
def server() -> Iterator[PgServer]:
    """Start a server; stop it and remove its files afterwards. RuntimeError when it cannot start."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) were not found")
    user = (os.environ.get("PAPERDIGEST_PG_USER") or "nobody") if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="pdpg"))
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (folder, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    try:
        made = _run_as(user, [initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.strip()[-500:]}")
        options = f"-k {sockets} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c full_page_writes=off"
        options += " -c synchronous_commit=off -c max_connections=100"
        started = _run_as(
            user, [pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w", "-t", "60", "start"]
        )
        if started.returncode != 0:
            log = (folder / "log").read_text(errors="replace")[-1000:] if (folder / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()[-500:]} {log}")
        yield PgServer(folder, port, "postgres")
    finally:
        if data.exists():
            _run_as(user, [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def no_postgresql(why: str) -> None:
    """Skip a PostgreSQL test, saying how to get a server, or fail it where it must run (CI)."""
    import pytest  # noqa: PLC0415  (lazy on purpose: `python -m tests.pgserver` runs without pytest)

    message = f"{why}: the PostgreSQL half of the tests needs `apt-get install postgresql` (server binaries)"
    if os.environ.get("PAPERDIGEST_REQUIRE_PG") == "1":
        pytest.fail(message)
    pytest.skip(message)


def main() -> int:
    """Start a server, print its URL, stop it (and remove its files) on Ctrl-C or SIGTERM."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with server() as pg:
        print(pg.url(), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
