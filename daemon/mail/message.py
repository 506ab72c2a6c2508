"""Digest -> RFC 5322 message: multipart/alternative (text first, HTML last), UTF-8, stable Message-ID."""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import hashlib
import re
from email.header import Header
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, parseaddr
from urllib.parse import quote

from paperdigest.errors import ConfigError

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_header(value: str) -> str:
    """No CR, LF or other control characters (C1 and the Unicode line separators included, which
    Python's line splitting honours): nothing can start a header of its own."""
    return _CONTROL.sub(" ", value).strip()


@functools.lru_cache(maxsize=64)
def split_from(from_header: str) -> tuple[str, str]:
    """'Paper Digest <digest@example.org>' -> ('Paper Digest', 'digest@example.org') (cached: every
    message of a run parses the same From, several times)."""
    pairs = getaddresses([clean_header(from_header)])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise ConfigError(f"mail.from: not one mail address: {from_header!r}")
    return pairs[0]


def message_id(subscriber: str, period: dt.datetime, from_header: str) -> str:
    """The same (subscriber, period) always gets the same Message-ID, so a repeat can be dropped."""
    domain = split_from(from_header)[1].rsplit("@", 1)[1]
    digest = hashlib.sha256(f"{subscriber.lower()}|{period.isoformat()}".encode()).hexdigest()[:32]
    return f"<digest.{digest}@{domain}>"


def build_message(
    *,
    from_header: str,
    to_email: str,
    to_name: str | None,
    subject: str,
    text: str | None,
    html: str | None,
    msg_id: str,
    date: dt.datetime,
    unsubscribe_url: str | None = None,
) -> bytes:
    """A message with text/plain first and text/html last when both are given.

    The Subject is written by _unstructured (RFC 2047 Q-encoded words where needed, folded),
    the addresses by _address, the other headers by _fold. A body goes
    as it is (7bit) when it is printable ASCII in lines of at most 998 octets (the mailed HTML,
    its non-ASCII written as character references by render.py), else as UTF-8, quoted-printable
    by the C encoder; the MIME frame is written here: the email package's content manager and
    generator cost several times more than everything else in a digest, for the same bytes.
    """
    if text is None and html is None:
        raise ValueError("a message needs a text or an HTML body")
    from_name, from_addr = split_from(from_header)
    domain = from_addr.rsplit("@", 1)[1]
    head = [
        _address("From", from_name, from_addr),
        _address("To", to_name, to_email),
        _unstructured("Subject", clean_header(subject)),
        _date(date),
        _fold("Message-ID", clean_header(msg_id)),
        _fold("List-Id", f"Paper Digest <digest.{domain}>"),
        *_unsubscribe_headers(from_addr, _addr_spec(to_email), unsubscribe_url),
        b"Auto-Submitted: auto-generated\r\n",
        b"MIME-Version: 1.0\r\n",
    ]
    parts = [_part(subtype, body) for subtype, body in (("plain", text), ("html", html)) if body is not None]
    if len(parts) == 1:
        return b"".join(head) + parts[0]
    # Quoted-printable output never holds "=_" ("=" itself is sent as =3D); a 7bit body may, so
    # the boundary is one that none of them holds (the first but for a body made to hold it).
    boundary = b""
    seed = msg_id.encode("utf-8", "replace")
    while not boundary or any(boundary in part for part in parts):
        boundary = b"=_" + hashlib.sha256(seed).hexdigest()[:24].encode()
        seed += b"+"
    frame = [b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n']
    for part in parts:
        frame += [b"--" + boundary + b"\r\n", part, b"\r\n"]
    frame.append(b"--" + boundary + b"--\r\n")
    return b"".join(head) + b"".join(frame)


_PLAIN = re.compile(r"[\x20-\x7e]*")
_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")  # atoms, one space apart


_SIMPLE_ADDRESS = re.compile(  # dot-atom@domain: parseaddr gives it back as it is
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def _addr_spec(address: str) -> str:
    """The bare address, as parseaddr reads it (12 µs a message, for what is nearly always already
    a bare address: that is checked first)."""
    return address if _SIMPLE_ADDRESS.fullmatch(address) else parseaddr(address)[1]


@functools.lru_cache(maxsize=8)
def _date(date: dt.datetime) -> bytes:
    """The Date header (every message of a run has the same)."""
    return _fold("Date", format_datetime(date))


# Left as they are in a mailto's subject (RFC 6068: an address's other characters, "%", "&",
# "?", "#", "/" and anything not ASCII, are percent-encoded, so that no reader cuts it short).
_MAILTO_SAFE = "@!$'()*+,;=:-._~"


def _unsubscribe_headers(from_addr: str, to_addr: str, url: str | None) -> list[bytes]:
    """List-Unsubscribe: the one-click URL (RFC 8058) when there is one, and the mailto always.
    Each <URL> as it is, never RFC 2047-encoded (no client would read it): the mailto alone on
    the header's line when it fits in 78 characters, else on a line of its own."""
    mailto = f"<mailto:{from_addr}?subject=unsubscribe%20{quote(to_addr, safe=_MAILTO_SAFE)}>"
    if url is None:
        name = "List-Unsubscribe"
        if len(name) + 2 + len(mailto) <= 78:
            return [f"{name}: {clean_header(mailto)}\r\n".encode("ascii")]
        return [f"{name}:\r\n {clean_header(mailto)}\r\n".encode("ascii")]
    return [
        _fold_list("List-Unsubscribe", [f"<{url}>", mailto]),
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
    ]


def _fold(name: str, value: str) -> bytes:
    """A header line: short printable ASCII as is, anything else through the SMTP policy."""
    if len(name) + len(value) <= 76 and _PLAIN.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    return SMTP.fold_binary(name, SMTP.header_factory(name, value))


_Q_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")
_WORD_MAX = 75  # an encoded word is at most 75 characters (RFC 2047 2)


def _unstructured(name: str, value: str) -> bytes:
    """An unstructured header (the Subject) folded under 78 characters, written here (the email
    package's folder costs ~0.07 ms a message, as much as the rest of the headers together):
    printable ASCII words as they are, each run of words with anything else in it (or "=?", or
    too long to fold) as RFC 2047 Q-encoded words. White space between two encoded words is not
    text for a reader, so a run's own spaces are encoded inside its words; the spaces between
    items are kept, and a fold (CRLF) goes only before one of them, never before the first
    (a reader may keep that space)."""
    if len(name) + len(value) <= 76 and "=?" not in value and _PLAIN.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    first_room = 78 - len(name) - 2  # after "Subject: "
    items: list[str] = []
    run: list[str] = []
    for index, token in enumerate(value.split(" ")):
        too_long = len(token) > (first_room if index == 0 else 76)
        if (run and not token) or too_long or "=?" in token or not _PLAIN.fullmatch(token):
            run.append(token)  # a run's empty tokens (spaces in a row) are its own spaces
            continue
        if run:
            items += _encoded_words(" ".join(run), _WORD_MAX if items else first_room)
            run = []
        items.append(token)
    if run:
        items += _encoded_words(" ".join(run), _WORD_MAX if items else first_room)
    lines = [f"{name}: {items[0]}"]
    for item in items[1:]:
        if item and len(lines[-1]) + 1 + len(item) > 78:
            lines.append("")
        lines[-1] += " " + item
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _encoded_words(text: str, first: int) -> list[str]:
    """`text` as Q-encoded words (UTF-8), the first at most `first` characters long, the others
    75, a character never split between two of them."""
    words: list[str] = []
    room = min(first, _WORD_MAX) - len("=?utf-8?q??=")
    current = ""
    for char in text:
        if char in _Q_SAFE:
            piece = char
        elif char == " ":
            piece = "_"
        else:
            piece = "".join(f"={byte:02X}" for byte in char.encode("utf-8"))
        if current and len(current) + len(piece) > room:
            words.append(f"=?utf-8?q?{current}?=")
            current = ""
            room = _WORD_MAX - len("=?utf-8?q??=")
        current += piece
    words.append(f"=?utf-8?q?{current}?=")
    return words


def _fold_list(name: str, items: list[str]) -> bytes:
    """A header of comma-separated <URL>s (List-Unsubscribe), one per line: URLs must never be
    RFC 2047-encoded (no client would read them), and a line may exceed 78 characters only
    when a URL does."""
    return (f"{name}: " + ",\r\n ".join(clean_header(item) for item in items) + "\r\n").encode("ascii")


def _address(field: str, display: str | None, email: str) -> bytes:
    """'Field: Name <addr>' folded. A printable ASCII name that fits is written as is when
    it is atoms one space apart and quoted otherwise; any other (non-ASCII, long, or holding
    "=?" that a reader might decode) is RFC 2047-encoded whole, in as many encoded words as its
    length needs. The policy's own address folder is not used: it re-emits an encoded name
    partly as bare atoms, where a ")" ends the name for every parser ("0) <NBSP>...")."""
    name = clean_header(display or "")
    if not name:
        return _fold(field, email)
    if _PHRASE.fullmatch(name):
        plain = f"{name} <{email}>"
    else:  # quoted, so that no reader folds its white space or reads its specials
        plain = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{email}>'
    if "=?" not in name and _PLAIN.fullmatch(plain) and len(field) + 2 + len(plain) <= 78:
        return f"{field}: {plain}\r\n".encode("ascii")
    words = Header(name, "utf-8", header_name=field).encode(linesep="\r\n")
    last_line = len(words) - words.rfind("\n") - 1 if "\n" in words else len(field) + 2 + len(words)
    space = " " if last_line + 3 + len(email) <= 78 else "\r\n "
    return f"{field}: {words}{space}<{email}>\r\n".encode("ascii")


MAX_LINE = 998  # octets in a line, CRLF left out (RFC 5322 2.1.1)
_PRINTABLE = b"\t\n" + bytes(range(0x20, 0x7F))  # what a 7bit body may hold (LF: its line ends)


def _part(subtype: str, body: str) -> bytes:
    """One text part: its headers, a blank line, the body with CRLF lines: as it is (7bit) when
    it is printable ASCII (tab allowed) in lines of at most 998 octets, none ending in white
    space (which a relay may strip); else UTF-8 in quoted-printable."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n") if "\r" in body else body
    if lines.isascii():
        raw = lines.encode("ascii")
        if (
            not raw.translate(None, _PRINTABLE)  # nothing but printable ASCII, tab and LF
            and b" \n" not in raw
            and b"\t\n" not in raw
            and not raw.endswith((b" ", b"\t"))
            and max(map(len, raw.split(b"\n"))) <= MAX_LINE
        ):
            return _framed(subtype, b"7bit", raw.replace(b"\n", b"\r\n"))
    # Encoded with LF line ends, soft breaks included, then every line end made CRLF.
    encoded = binascii.b2a_qp(lines.encode("utf-8"), quotetabs=False, istext=True, header=False)
    return _framed(subtype, b"quoted-printable", encoded.replace(b"\n", b"\r\n"))


def _framed(subtype: str, encoding: bytes, encoded: bytes) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode()
        + b"Content-Transfer-Encoding: "
        + encoding
        + b"\r\n\r\n"
        + encoded
        + (b"" if encoded.endswith(b"\r\n") else b"\r\n")
    )
