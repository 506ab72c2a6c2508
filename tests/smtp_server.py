"""A real SMTP server on loopback (aiosmtpd) that records what it receives and answers as told."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Handler:
    """Records messages. `rcpt_replies` / `data_replies` map a recipient to a reply such as
    '550 5.1.1 no such user' (`mail_replies` a sender); a recipient in `drop_at_rcpt` or
    `drop_at_data` has the connection closed there, unanswered. `pipelining`: EHLO offers
    PIPELINING (RFC 2920), which aiosmtpd serves (it reads commands as they come) but does not
    advertise; `pipelined` then records, for each MAIL, the commands already waiting behind it."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    mail_replies: dict[str, str] = field(default_factory=dict)
    drop_at_rcpt: set[str] = field(default_factory=set)
    drop_at_data: set[str] = field(default_factory=set)
    pipelining: bool = False
    pipelined: list[bytes] = field(default_factory=list)
    delay: float = 0.0
    on_message: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.pipelined.append(bytes(server._reader._buffer))  # what the client wrote after MAIL, unread yet
        reply = self.mail_replies.get(address.lower())
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.lower() in self.drop_at_rcpt:
            server.transport.close()
            return "250 OK"  # never arrives: the connection is closed
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(rcpt.lower() in self.drop_at_data for rcpt in envelope.rcpt_tos):
            server.transport.close()
            return "250 OK"  # never arrives: the connection is closed after the whole message
        for rcpt in envelope.rcpt_tos:
            reply = self.data_replies.get(rcpt.lower())
            if reply:
                return reply
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
            count = len(self.received)
        if self.on_message is not None:
            self.on_message(count)
        return "250 Message accepted for delivery"

    def by_recipient(self) -> dict[str, list[Received]]:
        result: dict[str, list[Received]] = {}
        for item in self.received:
            for rcpt in item.recipients:
                result.setdefault(rcpt.lower(), []).append(item)
        return result


class Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == self.username and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)


class SmtpServer:
    """Start/stop a controller on a fixed port (so it can be 'down, then up')."""

    def __init__(
        self,
        handler: Handler,
        port: int | None = None,
        tls: ssl.SSLContext | None = None,
        auth: Authenticator | None = None,
    ) -> None:
        self.handler = handler
        self.port = port or free_port()
        self.tls = tls
        self.auth = auth
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.tls is not None:
            kwargs.update(tls_context=self.tls, require_starttls=True)
        if self.auth is not None:
            kwargs.update(authenticator=self.auth, auth_required=True, auth_require_tls=self.tls is not None)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
