"""The sample store and digests shared by the digest tests, the browser tests and docs/digest.png.

The bundled seeds are ingested (not backfilled) with the clock pinned at INGESTED, plus one dump
whose title is hostile markup; CONFIG has two subscribers, ada and grace; digests are built at NOW.
tests/golden/digest/ holds what they render to, and the README's screenshot is ada's HTML digest.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import Engine

from paperdigest import digest
from paperdigest.config import Settings, validate
from paperdigest.digest import render
from paperdigest.ingest import apply
from paperdigest.model import RawDump
from paperdigest.parse import parse_dump
from paperdigest.store.engine import open_engine
from tests.conftest import SEED_AS_OF, SEEDS

INGESTED = "2026-11-22T08:00:00+00:00"
NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
HOSTILE = '<script>alert(1)</script> & "quotes" agent'

CONFIG: dict[str, Any] = {
    "topics": {
        "agents": {"keywords": ["agent", "web agent", "GUI", "computer use"], "exclude": ["survey"]},
        "robotics": {"keywords": ["robot", "manipulation", "embodied"]},
        "medicine": {"keywords": ["medical", "biomedical", "clinical", "healthcare"]},
    },
    "subscribers": [
        {"email": "ada@example.org", "topics": ["agents"], "max_papers": 8, "timezone": "Europe/Berlin"},
        {"email": "grace@example.org", "topics": ["robotics", "medicine"], "max_papers": 6, "min_score": 2.0},
    ],
}


def settings(**overrides: Any) -> Settings:
    return validate({**CONFIG, **overrides}, "test")


def hostile_dump() -> bytes:
    """One listing in the full text layout (as seeds/004_*.txt) whose title is hostile markup."""
    return (
        f"new\n\nSubscribe\n\nDaily Papers\n\nNov 4\n\n{HOSTILE}\n\nAn agent that <b>injects</b> markup."
        "\n\n  • 3 authors\n·\nNov 1 5\n"
    ).encode()


def sample_store(url: str) -> Engine:
    """A new store at `url` holding the seeds and the hostile dump, ingested at INGESTED."""
    engine = open_engine(url)
    with mock.patch.dict(os.environ, {"PAPERDIGEST_NOW": INGESTED}):
        for name, as_of in sorted(SEED_AS_OF.items(), key=lambda item: item[1]):
            seed = SEEDS / name
            apply(engine, parse_dump(RawDump(str(seed), seed.read_bytes(), None), dt.date.fromisoformat(as_of)))
        apply(engine, parse_dump(RawDump("hostile.txt", hostile_dump(), None), dt.date(2026, 11, 4)))
    return engine


def screenshot_html(workdir: Path) -> str:
    """The page docs/digest.png shows: ada's HTML digest (tests/golden/digest/ada.html)."""
    engine = sample_store(f"sqlite:///{workdir / 'sample.db'}")
    try:
        conf = settings()
        return render.render_html(digest.build(engine, conf, conf.subscribers[0], NOW))
    finally:
        engine.dispose()
