"""Postfix's smtp-sink (C, event-driven): the SMTP server the mail benchmarks send to.

Started on a free loopback port (as root with `-u nobody`). With `-c` it prints a running count
of the messages it took (the benchmark reads the last line), and throws them away; with a dump
folder (`-d`) it writes each message to its own file there (benchmarks/kill_loop.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SMTP_SINK = "/usr/sbin/smtp-sink"
INSTALL_HINT = "smtp-sink (Postfix) is not installed: `apt-get install postfix` (the binary is /usr/sbin/smtp-sink)"


def binary() -> str | None:
    """The smtp-sink binary, on PATH or where Debian puts it; None when it is not installed."""
    found = shutil.which("smtp-sink")
    if found:
        return found
    return SMTP_SINK if Path(SMTP_SINK).exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postfix_version() -> str:
    try:
        found = subprocess.run(["postconf", "-d", "mail_version"], capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return found.stdout.strip().partition("=")[2].strip() or "unknown"


class SmtpSink:
    """A running smtp-sink. `messages()` is how many it has taken so far (counting mode)."""

    def __init__(self, path: str, *, dump_dir: Path | None = None, workdir: Path | None = None) -> None:
        self.port = free_port()
        self.dump_dir = dump_dir
        self.counter = Path(tempfile.mkstemp(prefix="smtp-sink-", suffix=".count", dir=workdir)[1])
        command = [path, *(["-u", "nobody"] if os.geteuid() == 0 else [])]
        command += ["-d", f"{dump_dir}/m."] if dump_dir is not None else ["-c"]
        command += [f"127.0.0.1:{self.port}", "64"]
        with self.counter.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE)
        self.pid = self.process.pid
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    self.stop()
                    raise RuntimeError(f"smtp-sink did not start: {err.strip()}") from None
                time.sleep(0.02)
        self.version = postfix_version()
        time.sleep(0.05)  # the probe connection's counter line

    def messages(self) -> int:
        """Messages taken so far: the last of the counter lines ("sess=N quit=N mesg=N")."""
        text = self.counter.read_text("ascii", "replace").replace("\r", "\n").strip()
        last = text.rsplit("\n", 1)[-1] if text else ""
        for part in last.split():
            if part.startswith("mesg="):
                return int(part[5:])
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.counter.unlink(missing_ok=True)
