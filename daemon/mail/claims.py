"""Who holds a claim on an outbox row: host, boot, pid namespace, pid and the process's start
time, so that a later run on the same machine can tell a dead sender's claims from a live one's.
"""

from __future__ import annotations

import os
import socket


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:")
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if ")" in stat else ""


def claim_token() -> str:
    """Who is sending: host, boot, pid namespace, pid and its start time, so that a later run on
    the same machine can tell a dead sender's claims from a live one's."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    pid = os.getpid()
    return f"{socket.gethostname()}|{boot}|{_pid_namespace()}|{pid}|{_start_time(pid)}"


def claim_is_dead(token: str | None) -> bool:
    """A claim made on this machine by a process that no longer runs. Anything we cannot judge
    (another host, another pid namespace) is left to the claim's lease."""
    if not token:
        return True
    parts = token.split("|")
    if len(parts) != 5 or not parts[3].isdigit():
        return False
    host, boot, namespace, pid_text, started = parts
    if host != socket.gethostname():
        return False
    if boot and boot != _read("/proc/sys/kernel/random/boot_id"):
        return True  # the machine restarted since: that process is gone
    if namespace != _pid_namespace():
        return False
    pid = int(pid_text)
    if pid == os.getpid() and started == _start_time(pid):
        return False
    return _start_time(pid) != started  # no such process now, or the pid was reused
