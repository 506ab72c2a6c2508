"""What people read on a terminal: the backfill progress bar and the tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from paperdigest.model import DumpResult, Paper


class _Failure(Protocol):
    source: str
    error: Exception


class ProgressView:
    """A progress bar when `stream` is a terminal; otherwise it only prints errors."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.console = Console(file=stream)
        self.stream = stream
        self.progress: Progress | None = None
        if enabled and stream.isatty():
            self.progress = Progress(
                TextColumn("backfill"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
                # Redrawn on each dump, not by rich's refresh thread: backfill forks its parsing
                # worker only from a single-threaded process.
                auto_refresh=False,
            )
        self.task: Any = None

    def start(self, total: int) -> None:
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task("backfill", total=total)
            self.progress.refresh()

    def advance(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)
            self.progress.refresh()

    def print_error(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=self.stream, flush=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextlib.contextmanager
def progress_for(stream: TextIO, enabled: bool) -> Iterator[ProgressView]:
    view = ProgressView(stream, enabled)
    try:
        yield view
    finally:
        view.stop()


def backfill_summary(out: TextIO, results: list[DumpResult], failures: list[Any], seconds: float) -> None:
    entries = sum(r.entries for r in results)
    table = Table(title="backfill summary", show_header=True)
    for column in ("dumps", "duplicates", "rejected", "entries", "new", "updated", "unchanged", "entries/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(results)),
        str(sum(r.duplicate_dump for r in results)),
        str(len(failures)),
        str(entries),
        str(sum(r.new for r in results)),
        str(sum(r.updated for r in results)),
        str(sum(r.unchanged for r in results)),
        f"{entries / seconds:,.0f}" if seconds > 0 else "-",
    )
    console = Console(file=out, width=100)
    console.print(table)
    for failure in failures:
        console.print(f"rejected: {failure.error}", markup=False, highlight=False)


def papers_table(out: TextIO, papers: list[Paper], reasons: list[str] | None = None) -> None:
    table = Table(show_header=True, show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("upvotes", justify="right")
    table.add_column("first seen")
    table.add_column("title")
    table.add_column("by")
    if reasons is not None:
        table.add_column("score and why")
    for rank, paper in enumerate(papers, 1):
        by = paper.org or (f"{paper.authors} authors" if paper.authors is not None else "")
        table.add_row(
            str(rank),
            "?" if paper.upvotes is None else str(paper.upvotes),
            paper.first_seen.isoformat(),
            paper.title,
            by,
        )
    Console(file=out, width=max(100, Console(file=out).width), markup=False, highlight=False).print(table)


def status_lines(report: Mapping[str, Any]) -> list[str]:
    lines = [
        f"health: {'ok' if report['healthy'] else 'UNHEALTHY'}",
        f"store: {report['store']}",
        f"papers: {report['papers']} ({report['papers_with_arxiv_id']} with an arXiv id), "
        f"dumps: {report['dumps']}, sightings: {report['sightings']}",
    ]
    if report["last_dumps"]:
        lines.append("last dumps:")
        for d in report["last_dumps"]:
            kind = "backfill" if d["backfill"] else "ingest"
            lines.append(
                f"  {d['ingested_at'][:19]}  {kind:8}  captured {d['as_of']}  {d['entries']:>4} entries "
                f"({d['new']} new, {d['updated']} updated)  {d['source']}"
            )
    else:
        lines.append("no dumps ingested yet")
    for source in report["sources"]:
        line = f"source {source['name']} ({source['kind']}): {source['state']}"
        if source["last_success"]:
            line += f", last success {source['last_success'][:16]}"
        if source["state"] == "failing":
            line += f", error: {source['last_error']}"
        lines.append(line)
    for job in report["next_runs"]:
        lines.append(f"next {job['job']}: {job['at'][:16]}")
    mail = report["mail"]
    counts = mail["counts"]
    lines.append(
        f"mail: {counts['sent'] + counts['accepted']} sent, {counts['pending'] + counts['sending']} pending, "
        f"{counts['failed']} failed, {counts['empty']} empty periods"
    )
    for m in mail["attention"]:
        when = f", next try {m['next_attempt_at'][:16]}" if m["status"] == "pending" else ""
        lines.append(
            f"  {m['status']:8} {m['subscriber']} for {m['period'][:16]} after {m['attempts']} "
            f"attempt(s){when}: {m['last_error'] or '-'}"
        )
    return lines
