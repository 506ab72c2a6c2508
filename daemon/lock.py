"""Single instance: one daemon per store, held by an advisory lock on a file beside the store."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url

from paperdigest.errors import PaperdigestError
from paperdigest.store.engine import state_dir


class AlreadyRunning(PaperdigestError):
    """Another paperdigest daemon holds this store."""


def lock_path(store_url: str) -> Path:
    """`papers.db` -> `papers.db.lock`; a server database -> a lock file in the state directory."""
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().with_name(Path(url.database).name + ".lock")
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return state_dir() / f"paperdigest-{digest}.lock"


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise AlreadyRunning(
                f"another paperdigest is already running on this store (pid {holder}, lock {self.path}); "
                "not starting a second one"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock; the file stays (never deleted under a holder)
            self.fd = None
