"""Single instance: one daemon per store, held by an advisory lock on a file beside the store."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url

from paperdigest.errors import PaperdigestError
from paperdigest.paths import state_dir


class AlreadyRunning(PaperdigestError):
    """Another paperdigest daemon holds this store."""


class LockError(PaperdigestError):
    """The instance lock cannot be taken for another reason than a live holder (a full disk, a
    read-only or missing folder)."""


def lock_path(store_url: str) -> Path:
    """`papers.db` -> `papers.db.lock`; a server database -> a lock file in the state directory."""
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        # The real file, whatever the path says (a symlink, `..`): one store, one lock.
        store = Path(url.database).expanduser().resolve()
        return store.with_name(store.name + ".lock")
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return state_dir() / f"paperdigest-{digest}.lock"


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> InstanceLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LockError(f"cannot open the instance lock {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise AlreadyRunning(
                f"another paperdigest is already running on this store (pid {holder}, lock {self.path}); "
                "not starting a second one"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise LockError(f"cannot take the instance lock {self.path}: {exc.strerror}") from None
        try:  # the pid, for the message a second instance prints
            pid = f"{os.getpid()}\n".encode()
            os.pwrite(fd, pid, 0)
            os.ftruncate(fd, len(pid))
        except OSError as exc:  # a full disk: nothing else will work either; say so in one line
            os.close(fd)
            raise LockError(f"cannot write the instance lock {self.path}: {exc.strerror}") from None
        self.fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock; the file stays (never deleted under a holder)
            self.fd = None
