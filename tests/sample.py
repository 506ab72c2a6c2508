"""The sample stores and digests shared by the digest tests, the browser tests and docs/digest.png.

Seeds: the bundled seeds are ingested (not backfilled) with the clock pinned at INGESTED, plus one
dump whose title is hostile markup; CONFIG has two subscribers, ada and grace; digests are built at
NOW. tests/golden/digest/ holds what they render to (ada.*, grace.*).

API: two days of the real daily-papers sample (May 22 and 23, 2023) as the huggingface source
fetches them, ingested the evening of each day; lin's digest of May 24 (lin.*) holds May 23's
papers. Changed from the sample, to show what a digest does with them: on May 23 one paper is
withdrawn (WITHDRAWN: never in a digest), QLoRA names its organisation, one author's name is
hostile markup, one paper has no AI summary (its abstract is cut at a sentence), and X-LLM (May 8,
with a project page) is listed again; RWKV (May 22) was sent to lin with 5 upvotes and has 20 now
(Rising). The README's screenshot is lin's HTML digest.
"""

from __future__ import annotations

import datetime as dt
import json
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
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from tests.conftest import SEED_AS_OF, SEEDS
from tests.hf_server import featured_on, sample_items

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


# --- the API sample ------------------------------------------------------------------------------

API_NOW = dt.datetime(2023, 5, 24, 8, 30, tzinfo=dt.UTC)
API_DAYS = {dt.date(2023, 5, 22): "2023-05-22T21:00:00+00:00", dt.date(2023, 5, 23): "2023-05-23T21:00:00+00:00"}
WITHDRAWN = "2305.14201"  # Goat: would be in lin's digest
RISING = ("2305.13048", 5)  # RWKV, sent to lin with 5 upvotes
HOSTILE_AUTHOR = "Eve <img src=x onerror=alert(2)> & Co"
API_CONFIG: dict[str, Any] = {
    "topics": {
        "llms": {"keywords": ["language model", "LLM", "quantization", "hallucination"], "exclude": ["survey"]},
    },
    "subscribers": [
        {"email": "lin@example.org", "topics": ["llms"], "max_papers": 5, "cron": "0 8 * * *", "timezone": "UTC"},
    ],
}


def api_settings() -> Settings:
    return validate(API_CONFIG, "test")


def api_day(day: dt.date) -> list[dict[str, Any]]:
    """The items of the sample featured on `day`, changed as the module's docstring says."""
    items = [item for item in sample_items() if featured_on(item) == day]
    if day == dt.date(2023, 5, 23):
        for item in items:
            paper = item["paper"]
            if paper["id"] == WITHDRAWN:
                paper["withdrawnAt"] = "2023-05-24T06:00:00.000Z"
            elif paper["id"] == "2305.14314":
                item["organization"] = {"name": "uw", "fullname": "University of Washington"}
            elif paper["id"] == "2305.13534":
                del paper["ai_summary"]
            elif paper["id"] == "2305.14233":
                paper["authors"][1]["name"] = HOSTILE_AUTHOR
        items += [item for item in sample_items() if item["paper"]["id"] == "2305.04160"]
    return items


def api_sample_store(path: Path) -> Engine:
    """A new SQLite store at `path` holding the two days as the source ingests them (not backfilled)."""
    engine = open_engine(f"sqlite:///{path}")
    for day, moment in API_DAYS.items():
        data = json.dumps(api_day(day), indent=2).encode()
        with mock.patch.dict(os.environ, {"PAPERDIGEST_NOW": moment}):
            apply(engine, parse_dump(RawDump(f"{day}_fetched.json", data, None), day))
    with engine.begin() as conn:
        (rwkv,) = [p for p in queries.all_papers(conn) if p.arxiv_id == RISING[0]]
        sent_at = dt.datetime(2023, 5, 23, 8, 0, tzinfo=dt.UTC)
        queries.record_sent_upvotes(conn, "lin@example.org", {rwkv.id: RISING[1]}, sent_at)
    return engine


def api_digest(engine: Engine) -> digest.Digest:
    conf = api_settings()
    return digest.build(engine, conf, conf.subscribers[0], API_NOW)


def screenshot_html(workdir: Path) -> str:
    """The page docs/digest.png shows: lin's HTML digest of the API sample (tests/golden/digest/lin.html)."""
    engine = api_sample_store(workdir / "sample.db")
    try:
        return render.render_html(api_digest(engine))
    finally:
        engine.dispose()
