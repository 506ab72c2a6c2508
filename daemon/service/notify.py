"""The small sd_notify protocol: READY=1, STATUS=..., WATCHDOG=1, STOPPING=1 to $NOTIFY_SOCKET."""

from __future__ import annotations

import datetime as dt
import os
import socket


class Notifier:
    """Does nothing when not started by systemd (no NOTIFY_SOCKET)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog: dt.timedelta | None = None
        self.last_status = ""
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog = dt.timedelta(microseconds=int(usec))

    def send(self, *fields: str) -> None:
        if not self.address:
            return
        payload = "\n".join(fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)  # a reader that does not keep up must never stall the service
                sock.connect(self.address)
                sock.sendall(payload)
        except OSError:
            pass  # systemd went away, the socket is gone or full: never fatal for the service

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={_one_line(status)}")

    def status(self, status: str) -> None:
        """Tell systemd what we are doing; repeated text is not sent again."""
        text = _one_line(status)
        if text != self.last_status:
            self.last_status = text
            self.send(f"STATUS={text}")

    def ping(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]
