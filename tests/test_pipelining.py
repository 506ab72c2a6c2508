"""SMTP PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write when the server offers it. Every
outcome must be the one the unpipelined path (stock smtplib's sendmail) gives: the same bytes
arrive, each refusal is classified the same way, and the connection stays usable after one."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from paperdigest.mail.smtp import SmtpOptions, SmtpTransport
from paperdigest.mail.transport import DeliveryError
from tests.smtp_server import Handler, SmtpServer

SENDER = "digest@example.org"
MESSAGE = b"Subject: x\r\n\r\n.a line with a dot\r\nGr\xc3\xbc\xc3\x9fe\r\n" + b"z" * 900 + b"\r\n"


@pytest.fixture(params=[False, True], ids=["plain", "pipelining"])
def smtp(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    server = SmtpServer(Handler(pipelining=request.param)).start()
    yield server
    server.stop()


def options(server: SmtpServer) -> SmtpOptions:
    return SmtpOptions("127.0.0.1", server.port, "none", None, None, 10.0)


def outcome(transport: SmtpTransport, recipient: str, sender: str = SENDER) -> tuple[str, bool, bool] | None:
    """None when delivered, else the DeliveryError's (reply, permanent, stop_batch)."""
    try:
        transport.send(sender=sender, recipient=recipient, message=MESSAGE, name="x")
    except DeliveryError as exc:
        return exc.reply, exc.permanent, exc.stop_batch
    return None


def test_pipelining_is_used_only_when_offered(smtp: SmtpServer) -> None:
    with SmtpTransport(options(smtp)) as transport:
        assert outcome(transport, "a@example.org") is None
        assert outcome(transport, "b@example.org") is None
    waiting = smtp.handler.pipelined
    assert len(waiting) == 2
    if smtp.handler.pipelining:  # RCPT and DATA were written with MAIL, before its reply
        assert all(b"rcpt TO:<" in w and w.endswith(b"\r\ndata\r\n") for w in waiting), waiting
    else:
        assert waiting == [b"", b""]


def test_the_same_bytes_arrive_as_through_stock_smtplib(smtp: SmtpServer) -> None:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
        client.sendmail(SENDER, ["stock@example.org"], MESSAGE)
    with SmtpTransport(options(smtp)) as transport:
        assert outcome(transport, "ours@example.org") is None
    got = smtp.handler.by_recipient()
    assert got["ours@example.org"][0].data == got["stock@example.org"][0].data
    assert got["ours@example.org"][0].data.rstrip(b"\r\n") == MESSAGE.rstrip(b"\r\n")
    assert [r.sender for r in smtp.handler.received] == [SENDER, SENDER]


# (where the server refuses, its reply) -> (permanent, stop_batch), the same with and without
# pipelining; after each, the next message on the same transport must go through.
REFUSALS = [
    ("rcpt", "550 5.1.1 no such user here", True, False),
    ("rcpt", "451 4.7.1 greylisted, try later", False, False),
    ("rcpt", "421 4.3.2 shutting down", False, False),
    ("mail", "451 4.3.0 sender deferred", False, True),
    ("mail", "553 5.7.1 sender refused", False, True),
    ("mail", "421 4.3.2 shutting down", False, True),
    ("data", "550 5.7.1 message refused", True, False),
    ("data", "451 4.3.0 try later", False, False),
    ("data", "421 4.3.2 shutting down", False, True),
]


@pytest.mark.parametrize(("where", "reply", "permanent", "stop"), REFUSALS)
def test_a_refusal_is_classified_as_without_pipelining(
    smtp: SmtpServer, where: str, reply: str, permanent: bool, stop: bool
) -> None:
    sender = SENDER
    if where == "rcpt":
        smtp.handler.rcpt_replies["bad@example.org"] = reply
    elif where == "data":
        smtp.handler.data_replies["bad@example.org"] = reply
    else:
        sender = "refused@example.org"
        smtp.handler.mail_replies[sender] = reply
    with SmtpTransport(options(smtp)) as transport:
        assert outcome(transport, "before@example.org") is None
        got = outcome(transport, "bad@example.org", sender)
        assert got is not None
        told, was_permanent, stopped = got
        assert reply.split(" ", 1)[0] in told and (was_permanent, stopped) == (permanent, stop), got
        # The connection is usable after (a 421 drops it, and the next send opens another).
        assert outcome(transport, "after@example.org") is None
    assert sorted(smtp.handler.by_recipient()) == ["after@example.org", "before@example.org"]


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_a_connection_dropped_mid_message_is_lost_not_delivered(smtp: SmtpServer, where: str) -> None:
    """Closed by the server before its reply to RCPT, or after the whole message but before the
    250: a lost connection (stop the batch, retry later), never a delivery; the next send
    connects again."""
    (smtp.handler.drop_at_rcpt if where == "rcpt" else smtp.handler.drop_at_data).add("bad@example.org")
    with SmtpTransport(options(smtp)) as transport:
        assert outcome(transport, "before@example.org") is None
        got = outcome(transport, "bad@example.org")
        assert got is not None and "connection lost" in got[0] and got[1:] == (False, True), got
        assert outcome(transport, "after@example.org") is None
    assert sorted(smtp.handler.by_recipient()) == ["after@example.org", "before@example.org"]
