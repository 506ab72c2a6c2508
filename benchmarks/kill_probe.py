"""Run the paperdigest CLI with a probe in smtplib, for benchmarks/kill_loop.py.

    python benchmarks/kill_probe.py PAGE send          # the same as `python -m paperdigest send`

The probe counts, in a shared memory page (PAGE, a file of at least 4 KiB that the kill loop
maps too), where the SMTP conversation is: MAIL commands begun, messages whose last byte (the
final ".") has been handed to the kernel, and 250 replies to DATA read back. Each count is a
plain store into the mapped page (no system call), so it is still there after a SIGKILL and the
kill loop can tell on which side of the server's 250 a kill landed. It also keeps the monotonic
time of the first MAIL and of the latest reply, to time the batch. Cost: about a microsecond per
SMTP command.
"""

from __future__ import annotations

import mmap
import smtplib
import struct
import sys
import time

# Offsets in the page, each an unsigned 64-bit little-endian integer.
MAILS, DOTS, REPLIES, FIRST_MAIL_NS, LAST_REPLY_NS = 0, 8, 16, 24, 32
PAGE_SIZE = 4096


def read(page: mmap.mmap, offset: int) -> int:
    return int(struct.unpack_from("<Q", page, offset)[0])


def _bump(page: mmap.mmap, offset: int) -> None:
    struct.pack_into("<Q", page, offset, read(page, offset) + 1)


def install(page: mmap.mmap) -> None:
    """Wrap smtplib.SMTP's send and getreply so that they count into `page`. A MAIL is counted as
    its command is handed over: smtplib's own `mail()` writes it through `send`, and so does the
    transport's PIPELINING path (MAIL, RCPT and DATA in one write, which `mail()` never sees)."""
    original_send, original_getreply = smtplib.SMTP.send, smtplib.SMTP.getreply
    awaiting: dict[int, bool] = {}  # id(client) -> the last thing sent ended a message

    def send(self: smtplib.SMTP, s: bytes | str) -> None:
        if isinstance(s, str) and s.startswith("mail FROM:"):
            if read(page, MAILS) == 0:
                struct.pack_into("<Q", page, FIRST_MAIL_NS, time.monotonic_ns())
            _bump(page, MAILS)
        original_send(self, s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            _bump(page, DOTS)
            awaiting[id(self)] = True

    def getreply(self: smtplib.SMTP) -> tuple[int, bytes]:
        reply = original_getreply(self)
        if awaiting.pop(id(self), False):
            _bump(page, REPLIES)
            struct.pack_into("<Q", page, LAST_REPLY_NS, time.monotonic_ns())
        return reply

    smtplib.SMTP.send = send  # type: ignore[method-assign]
    smtplib.SMTP.getreply = getreply  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: kill_probe.py PAGE PAPERDIGEST-ARGS...", file=sys.stderr)
        return 2
    with open(argv[0], "r+b") as handle:
        page = mmap.mmap(handle.fileno(), PAGE_SIZE)
    install(page)
    from paperdigest.cli import main as paperdigest  # noqa: PLC0415  (lazy on purpose: after the probe is in)

    return paperdigest(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
