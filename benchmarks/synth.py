"""Deterministic synthetic listing dumps in the "full" text layout, for the benchmarks.

A corpus of `papers` distinct papers is shown over `dumps` daily dumps of up to `entries`
entries each. Dump d introduces the papers d*n .. d*n+n-1 (n = papers per dump, so every
paper shows up) and fills the rest with papers from the recent past, so a dump is part new
papers, part papers seen before whose upvotes have grown. Everything derives from the seed:
the same parameters give byte-identical dumps.

Titles carry a unique token (``Orca1234: ...``) so their folded title keys are distinct.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FIRST_CAPTURE = dt.date(2021, 1, 4)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HEADER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    "byAK and the research community\n\n"
)
RECENT_DUMPS = 20  # papers from this many earlier dumps may be shown again

_NAMES = ("Orca", "Falcon", "Lynx", "Atlas", "Nova", "Pangu", "Quill", "Raven", "Sable", "Tern", "Vega", "Wren",
          "Yak", "Zephyr", "Kite", "Heron", "Ibis", "Jade", "Lark", "Moth")
_ADJECTIVES = ("Scalable", "Efficient", "Robust", "Sparse", "Unified", "Adaptive", "Hierarchical", "Causal",
               "Multimodal", "Self-Supervised", "Open", "Lightweight", "Long-Context", "Federated", "Neural")
_NOUNS = ("Diffusion", "Transformers", "Agents", "Retrieval", "Reasoning", "Alignment", "Distillation",
          "Tokenizers", "World Models", "Reward Models", "Embeddings", "Adapters", "Benchmarks", "Decoding")
_TASKS = ("Robotic Planning", "Code Generation", "Video Understanding", "Speech Synthesis", "Theorem Proving",
          "Remote Sensing", "Medical Imaging", "Machine Translation", "Table QA", "3D Reconstruction")
_ORGS = ("nvidia NVIDIA", "google Google", "facebook AI at Meta", "amazon Amazon", "microsoft Microsoft",
         "deepseek-ai DeepSeek", "Qwen Qwen", "allenai Ai2")
_ABSTRACT_TEXT = (
    "we propose a novel method that improves the efficiency of large language models on long inputs while "
    "keeping accuracy across standard benchmarks our experiments show consistent gains over strong baselines "
    "with fewer parameters and less compute the approach combines sparse attention retrieval and lightweight "
    "adapters trained with a simple objective we release code data and models to support future research on "
    "robust multimodal reasoning agents planning evaluation scaling laws alignment and safety"
)
_WORDS = tuple(_ABSTRACT_TEXT.split())
_NON_KEY = re.compile(r"[^0-9a-z]+")


def fast_key(title: str) -> str:
    """paperdigest.ingest.identity.title_key for the ASCII titles made here (checked against it by the benchmark)."""
    return _NON_KEY.sub(" ", title.lower()).strip()


@dataclass(frozen=True, slots=True)
class SynthPaper:
    index: int
    title: str
    key: str
    abstract: str
    authors: int | None
    org: str | None
    base_upvotes: int
    growth: int
    published_lag: int  # days between publication and the first dump that shows it


@dataclass(frozen=True, slots=True)
class Shown:
    """One entry of a dump, already parsed: what the floor writer gets."""

    position: int
    paper: SynthPaper
    upvotes: int
    published: dt.date


def make_paper(seed: int, index: int) -> SynthPaper:
    rng = random.Random(seed * 1_000_003 + index)
    title = (f"{rng.choice(_NAMES)}{index}: {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} "
             f"for {rng.choice(_TASKS)}")
    words: list[str] = []
    target = rng.randint(200, 300)
    length = 0
    while length < target:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    abstract = " ".join(words).capitalize() + "."
    with_org = rng.random() < 0.1
    return SynthPaper(
        index=index, title=title, key=fast_key(title), abstract=abstract,
        authors=None if with_org else rng.randint(1, 40), org=rng.choice(_ORGS) if with_org else None,
        base_upvotes=rng.randint(0, 25), growth=rng.randint(0, 6), published_lag=rng.randint(0, 3),
    )


def capture_date(dump: int, first: dt.date = FIRST_CAPTURE) -> dt.date:
    return first + dt.timedelta(days=dump)


def dump_name(dump: int, first: dt.date = FIRST_CAPTURE) -> str:
    return f"dump_{capture_date(dump, first).isoformat()}_{dump:04d}.txt"


def date_line(day: dt.date, upvotes: int, capture: dt.date) -> str:
    """'Mar 20 2'; with the year ('Sep 30, 2024 2') when the day is not on or before the capture."""
    base = f"{MONTHS[day.month - 1]} {day.day}"
    if day > capture or (capture - day).days > 300:
        base += f", {day.year}"
    return f"{base} {upvotes}"


def render(capture: dt.date, shown: list[Shown]) -> str:
    """The dump text in the "full" layout: header, then title / abstract / meta blocks."""
    parts = [HEADER, f"{MONTHS[capture.month - 1]} {capture.day}\n\n"]
    for entry in shown:
        paper = entry.paper
        who = paper.org if paper.org is not None else f"  • {paper.authors} authors"
        parts.append(f"{paper.title}\n\n{paper.abstract}\n\n{who}\n·\n"
                     f"{date_line(entry.published, entry.upvotes, capture)}\n\n")
    return "".join(parts)


class Corpus:
    """The papers and the dump plan. Papers are made on demand (cheap, deterministic)."""

    def __init__(self, seed: int, papers: int, dumps: int, entries: int) -> None:
        self.seed = seed
        self.papers = papers
        self.dumps = dumps
        self.entries = entries
        self.per_dump = max(1, min(entries, math.ceil(papers / dumps)))

    def paper(self, index: int) -> SynthPaper:
        return make_paper(self.seed, index)

    def birth(self, index: int) -> int:
        return index // self.per_dump

    def upvotes(self, paper: SynthPaper, dump: int) -> int:
        """Grows with every dump after the paper's first: upvotes only drift upwards."""
        return paper.base_upvotes + paper.growth * max(0, dump - self.birth(paper.index))

    def published(self, paper: SynthPaper) -> dt.date:
        return capture_date(self.birth(paper.index)) - dt.timedelta(days=paper.published_lag)

    def indices(self, dump: int) -> list[int]:
        """Which papers dump `dump` shows: its new papers, then recent ones (sampled)."""
        start = dump * self.per_dump
        new = list(range(min(start, self.papers), min(start + self.per_dump, self.papers)))
        need = self.entries - len(new)
        low = max(0, start - RECENT_DUMPS * self.per_dump)
        high = min(self.papers, max(start, low + need + len(new)))
        taken = set(new)
        pool = [i for i in range(low, high) if i not in taken]
        rng = random.Random(self.seed * 7_919 + dump)
        return new + rng.sample(pool, min(need, len(pool)))

    def shown(self, dump: int) -> list[Shown]:
        papers = [self.paper(i) for i in self.indices(dump)]
        ranked = sorted(papers, key=lambda p: (-self.upvotes(p, dump), p.index))
        return [Shown(pos, p, self.upvotes(p, dump), self.published(p)) for pos, p in enumerate(ranked, 1)]

    def iter_dumps(self) -> Iterator[tuple[int, dt.date, list[Shown]]]:
        for dump in range(self.dumps):
            yield dump, capture_date(dump), self.shown(dump)


def write_dumps(corpus: Corpus, directory: Path) -> tuple[int, int]:
    """Write every dump of the corpus into `directory`; returns (files, entries)."""
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for dump, capture, shown in corpus.iter_dumps():
        (directory / dump_name(dump)).write_text(render(capture, shown), encoding="utf-8")
        total += len(shown)
    return corpus.dumps, total
