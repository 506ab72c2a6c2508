"""What a transport is, and how delivery failures are told apart."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from paperdigest.errors import MailError


class DeliveryError(MailError):
    """A message was not delivered.

    permanent: the server refused it for good (5xx for this recipient or message): mark failed.
    stop_batch: the connection or the account is the problem (down, 421, auth): stop the batch,
    keep everything pending and try again on a later run.
    """

    def __init__(self, reply: str, *, permanent: bool, stop_batch: bool = False) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent
        self.stop_batch = stop_batch


class Transport(Protocol):
    """Delivers rendered messages; used as a context manager around one batch."""

    def __enter__(self) -> Transport: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def send(self, *, sender: str, recipient: str, message: bytes, name: str) -> None:
        """Deliver one message or raise DeliveryError. `name` is a stable file-safe id of the digest."""
