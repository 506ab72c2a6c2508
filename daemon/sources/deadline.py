"""A hard end for one HTTP attempt: at its deadline the attempt's socket is shut down.

httpx's timeouts bound each connect, read and write, not their sum: a server that trickles its
headers or body a byte at a time, each byte within the read timeout, holds a fetch for as long
as it likes. The fetch loop checks the deadline between body chunks; this covers the rest (the
headers, a read that blocks, the redirects in between) by shutting the socket down, which makes
a blocked read return at once.

The socket comes from httpcore's `trace` request extension (public, documented): the stream of
each new connection is reported when it is made. So the client must not reuse connections
(`max_keepalive_connections=0`), or an attempt on a kept-alive connection would have no socket
to cut. Name resolution happens before there is a socket and is not covered.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any

# httpcore's trace events that carry a new connection's stream as "return_value" (the TLS one
# replaces the plain one: the plain socket is detached once wrapped).
_CONNECTED = (
    "connection.connect_tcp.complete",
    "connection.connect_unix_socket.complete",
    "connection.start_tls.complete",
)


class Cutoff:
    """Use as `with Cutoff(until) as cutoff:` around one attempt, passing `cutoff.trace` as the
    request's trace extension. `until` is a time.monotonic() value. `fired` tells afterwards
    whether the deadline cut the attempt."""

    def __init__(self, until: float) -> None:
        self.until = until
        self.fired = False
        self._socket: socket.socket | None = None
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(until - time.monotonic(), 0.0), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Cutoff:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()
        self._timer.join()  # no thread outlives the attempt (a forking backfill counts them)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event not in _CONNECTED:
            return
        stream = info.get("return_value")
        found = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(found, socket.socket):
            return
        with self._lock:
            self._socket = found
            if self.fired:  # connected just as the deadline passed
                _shut(found)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._socket is not None:
                _shut(self._socket)


def _shut(sock: socket.socket) -> None:
    """Shut the connection down both ways: a read blocked in another thread returns at once.
    socket.socket's own shutdown, also for a TLS socket: ssl.SSLSocket.shutdown would drop the
    TLS state under the reading thread's feet."""
    with contextlib.suppress(OSError):  # already closed, or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
