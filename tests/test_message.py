"""The hand-framed MIME message reads back, through the stdlib parser, exactly as the one the
email package would build: same headers, same bodies, same structure."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from hypothesis import example, given
from hypothesis import strategies as st

from paperdigest.mail.message import build_message, clean_header, split_from

FROM = "Paper Digest <digest@example.org>"
DATE = dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC)


def oracle(to_name: str | None, subject: str, text: str | None, html: str | None) -> bytes:
    """The same message built the slow, obvious way with EmailMessage."""
    from_name, _ = split_from(FROM)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=from_name, username="digest", domain="example.org")
    msg["To"] = Address(display_name=clean_header(to_name or ""), username="zoe", domain="example.org")
    msg["Subject"] = clean_header(subject)
    msg["Date"] = format_datetime(DATE)
    msg["Message-ID"] = "<digest.abc@example.org>"
    if text is not None:
        msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        if html is not None:
            msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    else:
        msg.set_content(html or "", subtype="html", charset="utf-8", cte="quoted-printable")
    return bytes(msg)


def ours(to_name: str | None, subject: str, text: str | None, html: str | None) -> bytes:
    return build_message(
        from_header=FROM,
        to_email="zoe@example.org",
        to_name=to_name,
        subject=subject,
        text=text,
        html=html,
        msg_id="<digest.abc@example.org>",
        date=DATE,
    )


def read(raw: bytes) -> tuple[object, ...]:
    parsed = message_from_bytes(raw, policy=policy.default)
    bodies = [
        (part.get_content_type(), part.get_content_charset(), part.get_content().replace("\r\n", "\n"))
        for part in (parsed.iter_parts() if parsed.is_multipart() else [parsed])  # type: ignore[attr-defined]
    ]
    headers = tuple(str(parsed[name]) for name in ("From", "To", "Subject", "Date", "Message-ID"))
    # The package's address parser turns white space inside one encoded word into a plain space
    # (b"=?utf-8?b?MCDCoDA=?=" reads as "0 0", not "0\xa00"), so which of two valid encodings a
    # writer picks shows in what it reads back; the exact name is checked by decoded_name below.
    headers = (headers[0], " ".join(headers[1].split()), *headers[2:])
    return parsed.get_content_type(), headers, bodies, parsed.defects


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


@given(
    to_name=st.none() | st.text(max_size=40),
    subject=st.text(min_size=1, max_size=200),
    text=st.none() | texts,
    html=st.none() | texts,
)
@example(to_name="Zoë Ünal", subject="Paper digest — 3 new papers (Nov 3)", text="Grüße\n", html="<p>Grüße</p>")
@example(to_name=None, subject="x", text="a line ending in spaces   \n.a dot\nFrom the start\n=3D", html=None)
@example(to_name="a", subject="y" * 150, text="é" * 300, html="<p>" + "x" * 500 + "</p>\r\n\r\n")
@example(to_name="Eve\r\nBcc: v@example.org", subject="Hi\r\nX-Evil: 1", text=None, html="<b>=_</b>")
@example(to_name="Ann (x) =?utf-8?q?Eve?=", subject="=?utf-8?q?Hi?= (a) <b@c>", text="t", html=None)
def test_reads_back_as_the_email_package_would_build_it(
    to_name: str | None, subject: str, text: str | None, html: str | None
) -> None:
    if text is None and html is None:
        text = ""
    if not clean_header(subject):
        subject = "s"
    raw = ours(to_name, subject, text, html)
    assert all(byte < 128 for byte in raw)  # 7-bit clean: every header encoded, bodies quoted-printable
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))  # RFC 5322's hard line limit
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert read(raw) == read(oracle(to_name, subject, text, html))
    assert read(raw)[3] == []  # no defects
    if to_name is not None and clean_header(to_name):
        assert decoded_name(raw) == clean_header(to_name)


def decoded_name(raw: bytes) -> str:
    """The To display name as RFC 2047 decoding gives it, every character kept: an ASCII name
    is quoted where needed (and any "=?...?=" in it is then text), any other is encoded."""
    name, _ = parseaddr(str(message_from_bytes(raw)["To"]))  # compat32: the raw, still encoded value
    return name if name.isascii() and not name.startswith("=?") else str(make_header(decode_header(name)))
