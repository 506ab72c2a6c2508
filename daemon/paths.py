"""Where things live on disk, and how they are written: the state directory (store, lock,
archive, outbox), folders private to the service's user, and atomic file writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_DIR = 0o700  # the store, the archive and the outbox hold addresses and whole messages


def state_dir(env: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """$STATE_DIRECTORY (systemd), else $XDG_DATA_HOME/paperdigest, else ~/.local/share/paperdigest."""
    env = os.environ if env is None else env
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base) / "paperdigest"


def private_dir(path: Path) -> Path:
    """Make `path` and any missing parents, each readable by the owner only (whatever the umask);
    folders that exist already keep their mode."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # made meanwhile by another process
            continue
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: Path) -> None:
    """Create an empty file readable by the owner only, unless it exists."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder (mode 0600), fsync, then rename over the target."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
