"""Files, directories and globs -> RawDump, ordered by capture date."""

from __future__ import annotations

import datetime as dt
import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from paperdigest.config import MAX_DUMP_BYTES
from paperdigest.errors import ParseError, SourceError, UsageError
from paperdigest.model import RawDump
from paperdigest.parse import capture_date, header_of

PROCESSED = "processed"  # inbox subfolders: ingested files, refused files (beside a .error saying why)
REJECTED = "rejected"

# Files still being written or not meant as dumps.
_SKIP_SUFFIXES = (".part", ".tmp", ".crdownload", ".error", ".swp")
_SKIPPED = "hidden files and *.part, *.tmp, *.crdownload, *.error, *.swp and *~ files are skipped"


def is_candidate(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and not name.endswith(_SKIP_SUFFIXES) and not name.endswith("~")


def expand(paths: Iterable[str]) -> list[Path]:
    """Files named, files inside directories (recursively) and glob matches; each once. A pattern
    that matches nothing, or a folder that holds no dump file, is a UsageError naming it."""
    found: dict[Path, None] = {}
    for raw in paths:
        matches = sorted(glob.glob(raw, recursive=True)) if glob.has_magic(raw) else [raw]
        if not matches:
            raise UsageError(f"{raw}: no such file or directory (the pattern matched nothing)")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                inside = [s for s in sorted(path.rglob("*")) if s.is_file() and is_candidate(s)]
                inside = [sub for sub in inside if not _in_hidden_dir(sub, path)]
                if not inside:  # as a pattern that matches nothing: a mistyped or not yet filled folder
                    raise UsageError(f"{match}: no dump files in this folder ({_SKIPPED})")
                found.update(dict.fromkeys(inside))
            elif path.is_file():
                found[path] = None
            elif not path.exists():
                raise UsageError(f"{match}: no such file or directory")
            else:
                raise UsageError(f"{match}: not a regular file or directory")
    return list(found)


def _in_hidden_dir(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts[:-1])


def read(path: Path, max_bytes: int = MAX_DUMP_BYTES) -> RawDump:
    """The whole file, when it is no larger than `max_bytes`: SourceError when it cannot be
    read, ParseError (bad input) when it is too large."""
    try:
        return read_capped(path, max_bytes)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from None


def read_capped(path: Path, max_bytes: int) -> RawDump:
    """Read a dump, refusing one larger than `max_bytes` before reading it (its size on the open
    file) and while reading (it may grow in between). OSError passes through to the caller."""
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        if stat.st_size > max_bytes:
            raise too_large(path, stat.st_size, max_bytes)
        data = handle.read(stat.st_size + 1)  # not read(max_bytes + 1): that allocates the whole cap
        if len(data) > stat.st_size:  # it grew since the stat: read on, one byte past the cap at most
            data += handle.read(max_bytes + 1 - len(data))
    if len(data) > max_bytes:
        raise too_large(path, None, max_bytes)
    return RawDump(str(path), data, stat.st_mtime)


def too_large(path: Path, size: int | None, max_bytes: int) -> ParseError:
    """The refusal of a dump over the cap, naming its size, the cap and how to raise it."""
    cap = f"the cap of {_size(max_bytes)} for a dump"
    how = "raise [limits] max_dump_bytes in the config to accept bigger dumps"
    if size is None:  # it passed the size check, then grew while it was read
        return ParseError(str(path), None, f"grew past {cap} while being read: refused ({how})")
    return ParseError(str(path), None, f"{_size(size)} is larger than {cap}: refused without reading it ({how})")


def _size(count: int) -> str:
    """'209715200 bytes (200.0 MiB)'; small counts in bytes alone."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count} bytes ({count / scale:.1f} {unit})"
    return f"{count} bytes"


@dataclass(frozen=True, slots=True)
class Pending:
    path: Path
    as_of: dt.date


def order_by_capture(paths: list[Path], as_of: dt.date | None) -> list[Pending]:
    """Oldest capture first, reading only each file's head to find its date. A file that cannot
    be read is not this function's problem: it is dated by its name or time and left for the
    read that follows, which reports it as that file's failure."""
    pending = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                head = handle.read(4096)
                mtime: float | None = os.fstat(handle.fileno()).st_mtime
        except OSError:
            pending.append(Pending(path, capture_date(str(path), _mtime(path), as_of)))
            continue
        header = header_of(RawDump(str(path), head, mtime)) if as_of is None else None
        try:
            date = capture_date(str(path), mtime, as_of, header)
        except ParseError:  # a bad header date is reported when the dump itself is parsed
            date = capture_date(str(path), mtime, as_of)
        pending.append(Pending(path, date))
    return sorted(pending, key=lambda p: (p.as_of, str(p.path)))


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def origin_of(path: Path) -> str:
    """The source a dump named on the command line belongs to: its folder."""
    return str(path.absolute().parent)


def move_into(path: Path, subfolder: str) -> Path:
    """Move a file into `subfolder` beside it, never overwriting: a name already there gets a
    .1, .2, ... suffix. Nothing is ever deleted."""
    folder = path.parent / subfolder
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    counter = 1
    while target.exists():
        target = folder / f"{path.name}.{counter}"
        counter += 1
    os.replace(path, target)
    return target
