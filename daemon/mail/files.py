"""The file transport: each message becomes an .eml file (with an .html preview beside it)."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

from paperdigest.config import Settings
from paperdigest.mail.transport import DeliveryError
from paperdigest.paths import private_dir, state_dir, write_atomically


def safe_name(email: str) -> str:
    """An address as a file name: letters, digits and @._- kept, anything else '_'."""
    return "".join(ch if ch.isalnum() or ch in "@._-" else "_" for ch in email)


def file_name(subscriber: str, period: dt.datetime) -> str:
    """The stable name of a digest's files: its period (UTC) and its subscriber."""
    return f"{period.astimezone(dt.UTC):%Y-%m-%dT%H%MZ}_{safe_name(subscriber.lower())}"


def outbox_folder(settings: Settings) -> Path:
    """Where the file transport writes: mail.outbox_dir, else the state directory's outbox/."""
    return settings.mail.outbox_dir or state_dir() / "outbox"


def written_files(settings: Settings, subscriber: str, period: dt.datetime) -> tuple[Path, Path] | None:
    """Where the file transport wrote a digest: its .eml and its HTML preview (None: not a file)."""
    if settings.mail.transport != "file":
        return None
    base = outbox_folder(settings) / file_name(subscriber, period)
    return base.with_name(base.name + ".eml"), base.with_name(base.name + ".html")


def text_part(message: bytes) -> str | None:
    """The plain-text body of a message (None when it has none)."""
    parsed = message_from_bytes(message, policy=policy.default)
    body = parsed.get_body(preferencelist=("plain",)) if isinstance(parsed, EmailMessage) else None
    content = body.get_content() if body is not None else None
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def html_part(message: bytes) -> bytes | None:
    """The HTML body of a message, to open in a browser beside the .eml (None for text-only mail)."""
    parsed = message_from_bytes(message, policy=policy.default)
    if not isinstance(parsed, EmailMessage):
        return None
    body = parsed.get_body(preferencelist=("html",))
    if body is None:
        return None
    content = body.get_content()
    if isinstance(content, str):  # lines as a browser's file would have them, not the wire's CRLF
        return content.replace("\r\n", "\n").encode("utf-8")
    return bytes(content)


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
