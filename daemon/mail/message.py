"""Digest -> RFC 5322 message: multipart/alternative (text first, HTML last), UTF-8, stable Message-ID."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, parseaddr

from daemon.errors import ConfigError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clean_header(value: str) -> str:
    """No CR, LF or other control characters: nothing can start a header of its own."""
    return _CONTROL.sub(" ", value).strip()


def split_from(from_header: str) -> tuple[str, str]:
    """'Paper Digest <digest@example.org>' -> ('Paper Digest', 'digest@example.org')."""
    pairs = getaddresses([clean_header(from_header)])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise ConfigError(f"mail.from: not one mail address: {from_header!r}")
    return pairs[0]


def message_id(subscriber: str, period: dt.datetime, from_header: str) -> str:
    """The same (subscriber, period) always gets the same Message-ID, so a repeat can be dropped."""
    domain = split_from(from_header)[1].rsplit("@", 1)[1]
    digest = hashlib.sha256(f"{subscriber.lower()}|{period.isoformat()}".encode()).hexdigest()[:32]
    return f"<digest.{digest}@{domain}>"


def _address(display: str | None, email: str) -> Address:
    local, _, domain = email.rpartition("@")
    return Address(display_name=clean_header(display or ""), username=local, domain=domain)


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
) -> EmailMessage:
    """A message with text/plain first and text/html last when both are given."""
    if text is None and html is None:
        raise ValueError("a message needs a text or an HTML body")
    from_name, from_addr = split_from(from_header)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _address(from_name, from_addr)
    msg["To"] = _address(to_name, to_email)
    msg["Subject"] = clean_header(subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msg_id
    domain = from_addr.rsplit("@", 1)[1]
    msg["List-Id"] = f"Paper Digest <digest.{domain}>"
    msg["List-Unsubscribe"] = f"<mailto:{from_addr}?subject=unsubscribe%20{parseaddr(to_email)[1]}>"
    msg["Auto-Submitted"] = "auto-generated"
    if text is not None:
        msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        if html is not None:
            msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    else:
        msg.set_content(html or "", subtype="html", charset="utf-8", cte="quoted-printable")
    return msg
