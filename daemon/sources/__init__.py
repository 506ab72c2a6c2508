"""Where dumps come from. A source only fetches: it hands over what it found (sources/files.py
for local files, directory.py for an inbox, http.py for a URL, huggingface.py for the daily-papers
API by date); the ingest job parses, stores and settles it.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from paperdigest.config import LimitsSettings, SourceSettings
from paperdigest.model import Fetched, Found, SourceMemory
from paperdigest.sources.directory import DirectorySource
from paperdigest.sources.http import HttpSource
from paperdigest.sources.huggingface import HuggingFaceSource


class Source(Protocol):
    name: str

    def fetch(self, memory: SourceMemory, now: dt.datetime) -> Fetched:
        """What the source has now; `memory` is what the store kept of its last polls (the HTTP
        validators of the last fetch, the last complete day)."""
        ...

    def changed_since_read(self, found: Found) -> bool:
        """Whether a found file changed after it was read (it is then left for a later poll)."""
        ...


def make_source(settings: SourceSettings, limits: LimitsSettings, previous: Source | None = None) -> Source:
    """The source a config entry describes; a directory source keeps what `previous` saw."""
    if settings.kind == "directory":
        assert settings.path is not None
        source = DirectorySource(settings.name, settings.path, move=settings.move, max_bytes=limits.max_dump_bytes)
        if isinstance(previous, DirectorySource) and previous.path == source.path:
            source.seen = previous.seen
        return source
    if settings.kind == "huggingface":
        return HuggingFaceSource.configured(settings, limits)
    assert settings.url is not None
    return HttpSource.configured(settings.name, settings.url, limits)
