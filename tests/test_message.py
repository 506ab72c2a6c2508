"""The hand-framed MIME message reads back, through the stdlib parser, exactly as the one the
email package would build: same headers, same bodies, same structure."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import pytest
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
    # To is left out: the package's own writer and reader lose display names (an encoded word
    # glued to an atom, "=?...?=" in a quoted string read as encoded, white space inside an
    # encoded word read as a plain space), so it is no oracle for them; decoded_to checks ours
    # exactly instead. The Subject is left out too: the package's folder loses white space
    # between two encoded words it writes ("a\xa0  ¡" reads back as "a\xa0¡"), ours does not,
    # so it is checked against the subject itself.
    headers = tuple(str(parsed[name]) for name in ("From", "Date", "Message-ID"))
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
@example(to_name="000000) \xa0\xa0\xa0\xa0\xa0\xa0\xa0\U00010000\U00010000", subject="0", text=None, html=None)
@example(to_name="0000000 \xa0\xa0\xa0\xa0\xa0\xa0\xa0\U00010000\U00010000", subject="0", text=None, html=None)
@example(to_name="=?utf-8?q?Eve?= x", subject="0", text=None, html=None)
@example(to_name="0  0", subject="0", text=None, html=None)
@example(to_name='a "b" \\c', subject="0", text=None, html=None)
@example(to_name="Ann (x) =?utf-8?q?Eve?=", subject="=?utf-8?q?Hi?= (a) <b@c>", text="t", html=None)
@example(to_name=None, subject="00000000\xa0\xa0\xa0\xa0\U00010000\U00010000  \xa1", text=None, html=None)
def test_reads_back_as_the_email_package_would_build_it(
    to_name: str | None, subject: str, text: str | None, html: str | None
) -> None:
    if text is None and html is None:
        text = ""
    if not clean_header(subject):
        subject = "s"
    raw = ours(to_name, subject, text, html)
    assert all(byte < 128 for byte in raw)  # 7-bit clean: every header encoded, bodies quoted-printable or ASCII
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))  # RFC 5322's hard line limit
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert read(raw) == read(oracle(to_name, subject, text, html))
    assert read(raw)[3] == []  # no defects
    assert str(message_from_bytes(raw, policy=policy.default)["Subject"]) == clean_header(subject)
    assert message_from_bytes(raw, policy=policy.default)["To"].defects == ()
    assert decoded_to(raw) == (clean_header(to_name or ""), "zoe@example.org")


def decoded_to(raw: bytes) -> tuple[str, str]:
    """(name, address) of the To header, the name RFC 2047-decoded, every character kept."""
    name, address = parseaddr(str(message_from_bytes(raw)["To"]))  # compat32: the raw, still encoded value
    return (str(make_header(decode_header(name))) if "=?" in name else name), address


# --- 7bit bodies: the mailed HTML, pure ASCII (render.py writes its non-ASCII as references) ---


def transfer_encodings(raw: bytes) -> list[str]:
    parsed = message_from_bytes(raw, policy=policy.default)
    parts = parsed.iter_parts() if parsed.is_multipart() else [parsed]  # type: ignore[attr-defined]
    return [str(part["Content-Transfer-Encoding"]) for part in parts]


@pytest.mark.parametrize(
    ("html", "encoding"),
    [
        ("<p>Gr&#252;&#223;e</p>\n<p>" + "x" * 991 + "</p>", "7bit"),  # a line of 998 octets: the limit
        ("<p>" + "x" * 992 + "</p>", "quoted-printable"),  # 999
        ("<p>Grüße</p>", "quoted-printable"),  # not ASCII
        ("<p>a\x0cb</p>", "quoted-printable"),  # a control character
        ("<p>a\x00b</p>", "quoted-printable"),  # NUL (RFC 2045 forbids it in 7bit)
        ("<p>a</p>   \n<p>b</p>", "quoted-printable"),  # trailing white space, which a relay may strip
        ("<p>a</p>\t", "quoted-printable"),
        ("<p>a\tb</p>\r\n<p>b</p>\r<p>c</p>\n", "7bit"),  # any line ends, made CRLF
    ],
)
def test_an_html_part_goes_7bit_only_when_that_is_valid(html: str, encoding: str) -> None:
    raw = ours(None, "s", "Grüße\n", html)
    assert transfer_encodings(raw) == ["quoted-printable", encoding]
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(byte < 128 for byte in raw)
    assert read(raw) == read(oracle(None, "s", "Grüße\n", html)) and read(raw)[3] == []
    if encoding == "7bit":  # the body as it is, with CRLF line ends
        assert html.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode() in raw


def test_a_7bit_body_holding_the_boundary_gets_another() -> None:
    first = ours(None, "s", "t", "<p>x</p>")
    boundary = re.search(rb'boundary="([^"]+)"', first).group(1).decode()  # type: ignore[union-attr]
    html = f"<p>--{boundary}</p>\n--{boundary}--\n"
    raw = ours(None, "s", "t", html)
    other = re.search(rb'boundary="([^"]+)"', raw).group(1).decode()  # type: ignore[union-attr]
    assert other != boundary and other.encode() not in html.encode()
    assert transfer_encodings(raw) == ["7bit", "7bit"]
    assert read(raw) == read(oracle(None, "s", "t", html)) and read(raw)[3] == []
    assert ours(None, "s", "t", html) == raw  # still the same message every time


ascii_lines = st.lists(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=1100) | st.just("--=_"),
    max_size=8,
).map("\n".join)


@given(text=st.none() | ascii_lines, html=ascii_lines)
@example(text="a", html="=_ =3D =\n.\nFrom x\n--\n")
def test_ascii_bodies_read_back_as_the_email_package_would_build_them(text: str | None, html: str) -> None:
    raw = ours(None, "s", text, html)
    assert all(byte < 128 for byte in raw)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert read(raw) == read(oracle(None, "s", text, html))
    assert read(raw)[3] == []


subjects = st.lists(
    st.sampled_from(["", " ", "x", "Paper", "—", "é", "=?", "?=", "_", "=", "?", "(a)", "𝒳", "y" * 80, "\xa0"]),
    min_size=1,
    max_size=40,
).map("".join) | st.text(min_size=1, max_size=300)


@given(subject=subjects)
@example(subject="Paper digest — 12 new papers on agents, robotics (Nov 3)")
@example(subject="¡  ¡")
@example(subject="a " + "é" * 200 + "  b  " + "z" * 100)
def test_the_subject_reads_back_whole_and_folds_under_78(subject: str) -> None:
    if not clean_header(subject):
        subject = "s"
    raw = ours(None, subject, "t", None)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert str(parsed["Subject"]) == clean_header(subject) and parsed["Subject"].defects == ()
    head = raw.split(b"\r\n\r\n", 1)[0]
    subject_lines = head[head.index(b"Subject:") :].split(b"\r\n")
    folded = [subject_lines[0], *[line for line in subject_lines[1:] if line[:1] == b" "]]  # its continuations
    assert all(len(line) <= 78 for line in folded) and all(line.strip() for line in folded)


# --- List-Unsubscribe: written here, its URLs never encoded ----------------------------------


@pytest.mark.parametrize(
    ("to_email", "header"),
    [
        # As the email package's SMTP policy folded them before (its bytes, for every address the
        # config accepts that fits): on the header's line when it fits, else on a line of its own.
        ("a@x.org", b"List-Unsubscribe: <mailto:digest@example.org?subject=unsubscribe%20a@x.org>\r\n"),
        ("reader0123@example.org",
         b"List-Unsubscribe:\r\n <mailto:digest@example.org?subject=unsubscribe%20reader0123@example.org>\r\n"),
        ("o'brien+tag@example.org",
         b"List-Unsubscribe:\r\n <mailto:digest@example.org?subject=unsubscribe%20o'brien+tag@example.org>\r\n"),
        # Longer than a line: the policy RFC 2047-encoded the URL, which no client reads as one.
        ("a.long.address.of.someone.with.a.long.name@subdomain.example.org",
         b"List-Unsubscribe:\r\n <mailto:digest@example.org?subject=unsubscribe%20"
         b"a.long.address.of.someone.with.a.long.name@subdomain.example.org>\r\n"),
        # What would end the subject or the URL early is percent-encoded (RFC 6068), as is non-ASCII.
        ("a%b&c?d#e@x.org",
         b"List-Unsubscribe:\r\n <mailto:digest@example.org?subject=unsubscribe%20a%25b%26c%3Fd%23e@x.org>\r\n"),
        ("Zo\u00eb <z\u00f6e@x.org>",
         b"List-Unsubscribe:\r\n <mailto:digest@example.org?subject=unsubscribe%20z%C3%B6e@x.org>\r\n"),
    ],
)
def test_list_unsubscribe_holds_its_mailto_as_it_is(to_email: str, header: bytes) -> None:
    raw = build_message(
        from_header=FROM, to_email=to_email, to_name=None, subject="s", text="t", html=None,
        msg_id="<digest.abc@example.org>", date=DATE,
    )  # fmt: skip
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    at = head.index(b"List-Unsubscribe:")
    assert head[at : at + len(header)] == header
    assert b"=?" not in header
    assert message_from_bytes(raw, policy=policy.default)["List-Unsubscribe"].defects == ()
