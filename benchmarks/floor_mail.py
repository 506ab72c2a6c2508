"""The mail floor: our rendered messages sent with plain smtplib over one connection.

    python benchmarks/floor_mail.py --port PORT --sender ADDRESS MESSAGES_FILE

A plain script, run as its own process exactly as ours is, start-up included. It reads the
messages our run stored in its outbox (written to MESSAGES_FILE by the benchmark: per message a
line with the recipient, a line with the length, then the bytes), connects once to the SMTP
server on 127.0.0.1:PORT, says EHLO, `sendmail`s each message to its recipient, and QUITs:
what our SMTP transport does for a batch, with nothing else. Standard library only. It prints
one JSON line: the messages sent.
"""

from __future__ import annotations

import json
import smtplib
import sys


def read_messages(path: str) -> list[tuple[str, bytes]]:
    with open(path, "rb") as handle:
        data = handle.read()
    messages = []
    at = 0
    while at < len(data):
        end = data.index(b"\n", at)
        recipient = data[at:end].decode()
        size_end = data.index(b"\n", end + 1)
        size = int(data[end + 1 : size_end])
        messages.append((recipient, data[size_end + 1 : size_end + 1 + size]))
        at = size_end + 1 + size
    return messages


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[0] != "--port" or argv[2] != "--sender":
        print(__doc__, file=sys.stderr)
        return 2
    port, sender, path = int(argv[1]), argv[3], argv[4]
    messages = read_messages(path)
    client = smtplib.SMTP("127.0.0.1", port, timeout=60)
    client.ehlo()
    for recipient, message in messages:
        client.sendmail(sender, [recipient], message)
    client.quit()
    print(json.dumps({"sent": len(messages)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
