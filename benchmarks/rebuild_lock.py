"""One rebuild of the topic index of a copy of a SQLite store, with this tree's code or an older
commit's topic_index.py, while an ingest thread (its own engine, as another process would have)
tries a 20-paper dump every 0.3 s: prints the rebuild's log line (the new code says how long it
held the ingests' lock), the ingests tried and refused, the longest one, and the peak RSS.
A measurement of one run, not a ratio against a floor: run both codes back to back, e.g.

    python benchmarks/rebuild_lock.py new /path/to/200k/papers.db
    python benchmarks/rebuild_lock.py d8a7deb /path/to/200k/papers.db

The config's topics differ from any index the store holds ("segmentation" added), so each run
rebuilds. Leaves out: PostgreSQL, larger ingests, other load on the machine."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

from paperdigest.config import ScoringSettings, Settings, TopicSettings
from paperdigest.errors import StoreError
from paperdigest.ingest import apply
from paperdigest.model import Listing
from paperdigest.store.engine import open_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.listing_gen import entry

TOPICS = {"agents": ["agent", "benchmarks", "Language Model"], "llm": ["language model", "LLM"],
          "vision": ["image", "video", "diffusion", "segmentation"]}


def code(variant: str, folder: Path) -> ModuleType:
    if variant == "new":
        from paperdigest import topic_index  # noqa: PLC0415

        return topic_index
    old = folder / "topic_index_old.py"
    shown = subprocess.run(["git", "show", f"{variant}:daemon/topic_index.py"], check=True, capture_output=True,
                           text=True)
    old.write_text(shown.stdout)
    spec = importlib.util.spec_from_file_location("paperdigest.topic_index_old", old)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ingests(url: str, stop: threading.Event, waits: list[float], errors: list[str]) -> None:
    engine = open_engine(url)
    number = 0
    while not stop.is_set():
        number += 1
        entries = tuple(entry(i + 1, title=f"A new video agent {number} {i}", arxiv_id=f"3901.{number:03d}{i:02d}",
                              upvotes=i) for i in range(20))
        listing = Listing(f"bench-{number}", dt.date(2040, 1, 1) + dt.timedelta(days=number), "full",
                          hashlib.sha256(repr(entries).encode()).hexdigest(), entries)
        start = time.monotonic()
        try:
            apply(engine, listing)
        except StoreError as exc:
            errors.append(str(exc))
        waits.append(time.monotonic() - start)
        time.sleep(0.3)
    engine.dispose()


def main() -> None:
    variant, source = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("paperdigest").handlers.clear()
    folder = Path(tempfile.mkdtemp(prefix="rebuild-lock-"))
    try:
        url = f"sqlite:///{folder / 'papers.db'}"
        subprocess.run(["sqlite3", source, f".backup {folder / 'papers.db'}"], check=True)
        topic_index = code(variant, folder)
        settings = Settings().model_copy(update={
            "topics": {name: TopicSettings(keywords=keywords) for name, keywords in TOPICS.items()},
            "scoring": ScoringSettings(upvotes=2.0, title=5.0, abstract=2.0, ai_keywords=2.0)})
        engine = open_engine(url)
        stop, waits, errors = threading.Event(), [], []
        worker = threading.Thread(target=ingests, args=(url, stop, waits, errors))
        worker.start()
        time.sleep(1)
        start = time.monotonic()
        topic_index.ensure(engine, settings)
        took = time.monotonic() - start
        stop.set()
        worker.join()
        engine.dispose()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{variant}: ensure {took:.1f} s; ingests tried {len(waits)}, refused {len(errors)}; "
              f"longest ingest {max(waits):.2f} s; peak RSS {rss:.0f} MB")
        for error in errors[:1]:
            print(f"  {error}")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
