"""The directory source: the files of an inbox folder, once they have settled.

A file still being written is left for the next poll: a temporary name (*.part, .*), or a
size or modification time that changed since the last poll, or a modification time younger
than `settle`. The ingest job takes what this finds, then moves each file to processed/ (or,
when refused, to rejected/ beside a .error file saying why); nothing is ever deleted. With
`move = false` (the embedded seeds/) files stay where they are, and dumps ingested before are
known by their content hash.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from paperdigest.config import MAX_DUMP_BYTES
from paperdigest.errors import ParseError, SourceError
from paperdigest.model import Fetched, Found, SourceMemory
from paperdigest.parse import content_hash
from paperdigest.sources.files import Pending, is_candidate, order_by_capture, read_capped

log = logging.getLogger("paperdigest.sources")

SETTLE = dt.timedelta(seconds=2)


@dataclass
class DirectorySource:
    """Polls one folder. Keeps the last stat of files it saw, to tell files still growing."""

    name: str
    path: Path
    move: bool = True
    settle: dt.timedelta = SETTLE
    max_bytes: int = MAX_DUMP_BYTES  # a larger file is refused unread
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)

    def fetch(self, memory: SourceMemory, now: dt.datetime) -> Fetched:
        """The settled files, oldest capture first, read (or why they could not be)."""
        fetched = Fetched(skip_known=not self.move)
        files = self._files()
        present = {pending.path.name for pending in files}  # forget files gone since (moved, say)
        self.seen = {name: signature for name, signature in self.seen.items() if name in present}
        for pending in files:
            if self.move and not self._ready(pending.path, now):
                fetched.waiting.append(pending.path.name)
                continue
            self.seen.pop(pending.path.name, None)  # handed over: a file of that name later is a new one
            found = self._read(pending)
            if found is not None:
                fetched.found.append(found)
        return fetched

    def _files(self) -> list[Pending]:
        try:
            entries = sorted(self.path.iterdir())
        except FileNotFoundError:
            raise SourceError(f"source {self.name}: {self.path} does not exist") from None
        except OSError as exc:
            raise SourceError(f"source {self.name}: cannot list {self.path}: {exc.strerror}") from None
        candidates = [p for p in entries if p.is_file() and is_candidate(p)]
        return order_by_capture(candidates, None)  # oldest capture first

    def _ready(self, path: Path, now: dt.datetime) -> bool:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        signature = (stat.st_size, stat.st_mtime_ns)
        previous = self.seen.get(path.name)
        self.seen[path.name] = signature
        if previous is not None and previous != signature:
            return False  # it changed since the last poll: still being written
        age = now.timestamp() - stat.st_mtime
        return previous == signature or age >= self.settle.total_seconds()

    def _read(self, pending: Pending) -> Found | None:
        """The file as found: its bytes, or why it cannot be read; None when it went away."""
        path = pending.path
        file = path if self.move else None
        try:
            raw = read_capped(path, self.max_bytes)
        except FileNotFoundError:
            log.info("source %s: %s went away before it was read", self.name, path.name)
            return None
        except OSError as exc:
            unread = f"{path}: cannot read: {exc.strerror}"
            return Found(path.name, f"path:{path.absolute()}", pending.as_of, None, unread, file=file)
        except ParseError as exc:  # larger than the cap: refused unread, so known by its path and size
            key = f"path:{path.absolute()}:{_size(path)}"
            return Found(path.name, key, pending.as_of, None, str(exc), file=file)
        return Found(path.name, content_hash(raw.data), pending.as_of, raw, file=file)

    def changed_since_read(self, found: Found) -> bool:
        """Whether the file is no longer what was read (a writer that paused, then went on): it
        is then left where it is, to be taken whole once it has settled."""
        if found.file is None or found.raw is None:
            return False
        try:
            now = found.file.stat()
        except FileNotFoundError:
            return False
        same = (now.st_size, now.st_mtime) == (len(found.raw.data), found.raw.mtime)
        if same:
            try:
                same = content_hash(found.file.read_bytes()) == found.key
            except OSError:
                same = False
        if same:
            return False
        log.warning(
            "source %s: %s changed after it was read (%d -> %d bytes); left for a later poll",
            self.name,
            found.name,
            len(found.raw.data),
            now.st_size,
        )
        self.seen[found.name] = (-1, -1)  # it must be seen unchanged across a later poll first
        return True


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
