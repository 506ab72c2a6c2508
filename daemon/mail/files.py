"""The file transport: each message becomes an .eml file (with an .html preview beside it)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

from paperdigest.mail.transport import DeliveryError
from paperdigest.paths import private_dir, write_atomically


def html_part(message: bytes) -> bytes | None:
    """The HTML body of a message, to open in a browser beside the .eml (None for text-only mail)."""
    parsed = message_from_bytes(message, policy=policy.default)
    if not isinstance(parsed, EmailMessage):
        return None
    body = parsed.get_body(preferencelist=("html",))
    if body is None:
        return None
    content = body.get_content()
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


class FileTransport:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> FileTransport:
        try:
            private_dir(self.folder)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create {self.folder}: {exc.strerror}", permanent=False, stop_batch=True
            ) from None
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def send(self, *, sender: str, recipient: str, message: bytes, name: str) -> None:
        preview = html_part(message)
        try:
            write_atomically(self.folder / f"{name}.eml", message)
            if preview is not None:
                write_atomically(self.folder / f"{name}.html", preview)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write to {self.folder}: {exc.strerror}", permanent=False, stop_batch=True
            ) from None
