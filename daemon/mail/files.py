"""The file transport: each message becomes an .eml file (with an .html preview beside it)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from daemon.mail.transport import DeliveryError
from daemon.sources.files import write_atomically


class FileTransport:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> FileTransport:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create {self.folder}: {exc.strerror}", permanent=False, stop_batch=True
            ) from None
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def send(self, *, sender: str, recipient: str, message: bytes, name: str, html_preview: str | None) -> None:
        try:
            write_atomically(self.folder / f"{name}.eml", message)
            if html_preview is not None:
                write_atomically(self.folder / f"{name}.html", html_preview.encode("utf-8"))
        except OSError as exc:
            raise DeliveryError(
                f"cannot write to {self.folder}: {exc.strerror}", permanent=False, stop_batch=True
            ) from None
