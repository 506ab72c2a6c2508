"""The directory source: new files in the inbox are ingested, then moved to processed/ (or, when
rejected, to rejected/ beside a .error file saying why). Nothing is ever deleted.

A file still being written is left for the next poll: a temporary name (*.part, .*), or a
size or modification time that changed since the last poll, or a modification time younger
than `settle`. With `move = false` (the embedded seeds/) files stay where they are and a dump
already ingested is known by its content hash.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from paperdigest.config import MAX_DUMP_BYTES
from paperdigest.errors import BadInputError, ParseError, SourceError
from paperdigest.ingest import apply
from paperdigest.model import DumpResult, RawDump, Rejected
from paperdigest.parse import content_hash, parse_dump
from paperdigest.sources.files import Pending, is_candidate, order_by_capture, read_capped
from paperdigest.store import queries

log = logging.getLogger("paperdigest.sources")

PROCESSED = "processed"
REJECTED = "rejected"
SETTLE = dt.timedelta(seconds=2)


@dataclass
class PollResult:
    source: str
    ingested: list[DumpResult] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written
    validators: dict[str, str | None] = field(default_factory=dict)  # HTTP: etag, last_modified
    not_modified: bool = False
    empty: bool = False  # the source answered with a listing of zero entries

    @property
    def entries(self) -> int:
        return sum(r.entries for r in self.ingested)

    @property
    def new(self) -> int:
        return sum(r.new for r in self.ingested if not r.duplicate_dump)

    @property
    def changed(self) -> bool:
        return any(not r.duplicate_dump for r in self.ingested)


@dataclass
class DirectorySource:
    """Polls one folder. Keeps the last stat of files it saw, to tell files still growing."""

    name: str
    path: Path
    move: bool = True
    settle: dt.timedelta = SETTLE
    max_bytes: int = MAX_DUMP_BYTES  # a larger file is rejected unread
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)

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

    def poll(self, engine: Engine, now: dt.datetime) -> PollResult:
        result = PollResult(self.name)
        for pending in self._files():
            if self.move and not self._ready(pending.path, now):
                result.waiting.append(pending.path.name)
                continue
            self._take(engine, pending, result)
        self.seen = {k: v for k, v in self.seen.items() if (self.path / k).exists()}
        return result

    def _take(self, engine: Engine, pending: Pending, result: PollResult) -> None:
        """Ingest one file; a file that cannot be read or parsed is that file's problem alone."""
        path = pending.path
        dump = self._read(engine, pending, result)
        if dump is None:
            return
        key = content_hash(dump.data)
        if not self.move:
            with engine.connect() as conn:
                if queries.dump_by_hash(conn, key) is not None or queries.rejection_known(conn, self.name, key):
                    return
        try:
            listing = parse_dump(dump)
        except Exception as exc:  # a file that breaks the parser in any way is rejected, never retried forever
            reason = str(exc) if isinstance(exc, BadInputError) else f"{path}: unreadable listing: {type(exc).__name__}"
            if self._changed_since_read(path, dump, key, result):
                return  # still being written: judged again once it settles
            self._refuse(path, reason, key, pending, result)
            return
        outcome = apply(engine, listing, origin=self.name)  # a StoreError propagates: the file stays for the next poll
        result.ingested.append(outcome)
        if self.move and self._changed_since_read(path, dump, key, result):
            return  # what was read is stored; the whole file is ingested again (a diff) once it settles
        log.info(
            "source %s: ingested %s: %d entries, %d new, %d updated%s",
            self.name,
            path.name,
            outcome.entries,
            outcome.new,
            outcome.updated,
            " (already ingested)" if outcome.duplicate_dump else "",
        )
        if self.move:
            _move(path, self.path / PROCESSED)

    def _read(self, engine: Engine, pending: Pending, result: PollResult) -> RawDump | None:
        """The file's bytes, or None when it went away or was refused (unreadable, too large)."""
        path = pending.path
        try:
            return read_capped(path, self.max_bytes)
        except FileNotFoundError:
            log.info("source %s: %s went away before it was read", self.name, path.name)
        except OSError as exc:
            self._refuse(path, f"{path}: cannot read: {exc.strerror}", f"path:{path.absolute()}", pending, result)
        except ParseError as exc:  # larger than the cap: refused unread, so known by its path and size
            key = f"path:{path.absolute()}:{_size(path)}"
            if not self.move:
                with engine.connect() as conn:
                    if queries.rejection_known(conn, self.name, key):
                        return None  # left in place and already reported
            self._refuse(path, str(exc), key, pending, result)
        return None

    def _changed_since_read(self, path: Path, read: RawDump, key: str, result: PollResult) -> bool:
        """Whether the file is no longer what was read (a writer that paused, then went on): it
        is then left where it is, to be taken whole once it has settled."""
        try:
            now = path.stat()
        except FileNotFoundError:
            return False
        same = (now.st_size, now.st_mtime) == (len(read.data), read.mtime)
        if same:
            try:
                same = content_hash(path.read_bytes()) == key
            except OSError:
                same = False
        if same:
            return False
        log.warning(
            "source %s: %s changed after it was read (%d -> %d bytes); left for a later poll",
            self.name,
            path.name,
            len(read.data),
            now.st_size,
        )
        self.seen[path.name] = (-1, -1)  # it must be seen unchanged across a later poll first
        result.waiting.append(path.name)
        return True

    def _refuse(self, path: Path, reason: str, key: str, pending: Pending, result: PollResult) -> None:
        """Report a refused file and, in an inbox, move it aside to rejected/ (when that is possible)."""
        result.rejected.append(Rejected(self.name, path.name, reason, key, pending.as_of))
        log.warning("source %s: rejected %s: %s", self.name, path.name, reason)
        if not self.move:
            return
        try:
            target = _move(path, self.path / REJECTED)
            target.with_name(target.name + ".error").write_text(reason + "\n", encoding="utf-8")
        except OSError as exc:
            log.error("source %s: cannot move %s to %s/: %s", self.name, path.name, REJECTED, exc.strerror)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _move(path: Path, folder: Path) -> Path:
    """Move into `folder`, never overwriting: a name already there gets a .1, .2, ... suffix."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    counter = 1
    while target.exists():
        target = folder / f"{path.name}.{counter}"
        counter += 1
    os.replace(path, target)
    return target
