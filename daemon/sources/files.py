"""Files, directories and globs -> RawDump, ordered by capture date."""

from __future__ import annotations

import datetime as dt
import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from paperdigest.errors import ParseError, SourceError, UsageError
from paperdigest.model import RawDump
from paperdigest.parse import capture_date, header_of

# Files still being written or not meant as dumps.
_SKIP_SUFFIXES = (".part", ".tmp", ".crdownload", ".error", ".swp")


def is_candidate(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and not name.endswith(_SKIP_SUFFIXES) and not name.endswith("~")


def expand(paths: Iterable[str]) -> list[Path]:
    """Files named, files inside directories (recursively) and glob matches; each once."""
    found: dict[Path, None] = {}
    for raw in paths:
        matches = sorted(glob.glob(raw, recursive=True)) if glob.has_magic(raw) else [raw]
        if not matches:
            raise UsageError(f"{raw}: no such file or directory (the pattern matched nothing)")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                for sub in sorted(path.rglob("*")):
                    if sub.is_file() and is_candidate(sub) and not _in_hidden_dir(sub, path):
                        found[sub] = None
            elif path.is_file():
                found[path] = None
            elif not path.exists():
                raise UsageError(f"{match}: no such file or directory")
            else:
                raise UsageError(f"{match}: not a regular file or directory")
    return list(found)


def _in_hidden_dir(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts[:-1])


def read(path: Path) -> RawDump:
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            data = handle.read()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
    return RawDump(str(path), data, stat.st_mtime)


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
