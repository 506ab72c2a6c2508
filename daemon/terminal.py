"""What people read on a terminal: the backfill progress bar and the tables.

rich is imported by the functions that draw with it: `status` prints plain lines and starts without it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress

    from paperdigest.ingest.job import DayOutcome, Failure
    from paperdigest.model import DumpResult
    from paperdigest.score import ScoredPaper


class ProgressView:
    """A progress bar when `stream` is a terminal; otherwise it only prints errors."""

    def __init__(self, stream: TextIO, enabled: bool, label: str = "") -> None:
        from rich.console import Console  # noqa: PLC0415  lazy: rich only where something is drawn
        from rich.progress import (  # noqa: PLC0415  lazy: likewise
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=stream)
        self.stream = stream
        self.progress: Progress | None = None
        if enabled and stream.isatty():
            self.progress = Progress(
                TextColumn("backfill"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(label),  # what is counted: dumps (nothing said), or days
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
def progress_for(stream: TextIO, enabled: bool, label: str = "") -> Iterator[ProgressView]:
    view = ProgressView(stream, enabled, label)
    try:
        yield view
    finally:
        view.stop()


def backfill_summary(
    out: TextIO,
    results: list[DumpResult],
    failures: list[Failure],
    seconds: float,
    days: list[DayOutcome] | None = None,
) -> None:
    """The table after a backfill; by source, also how many days were skipped or had no papers."""
    from rich.console import Console  # noqa: PLC0415  lazy: rich only where something is drawn
    from rich.table import Table  # noqa: PLC0415  lazy: likewise

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
    if failures:  # each was reported on stderr as it happened: not again here
        console.print(
            f"{len(failures)} rejected (see above); `paperdigest status` lists each until a newer good dump "
            "from its folder is stored (this backfill's newer dumps count)",
            markup=False,
        )
    if days is not None:
        skipped = sum(1 for d in days if d.what == "skipped")
        empty = [d.day for d in days if d.what == "empty"]
        weekends = sum(1 for day in empty if day.weekday() >= 5)
        console.print(
            f"days: {len(results) + len(failures)} with papers, {skipped} skipped (ingested before), "
            f"{len(empty)} without papers ({weekends} on a weekend)",
            markup=False,
        )


def papers_table(out: TextIO, ranked: list[ScoredPaper], scores: bool) -> None:
    """The papers as a table, best first; with `scores`, each one's score and why."""
    from rich.console import Console  # noqa: PLC0415  lazy: rich only where something is drawn
    from rich.table import Table  # noqa: PLC0415  lazy: likewise

    from paperdigest.digest.views import byline  # noqa: PLC0415  lazy: markupsafe, for this table only

    table = Table(show_header=True, show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("upvotes", justify="right")
    table.add_column("first seen")
    table.add_column("title")
    table.add_column("by")
    if scores:
        table.add_column("score", justify="right")
        table.add_column("why")
    for rank, scored in enumerate(ranked, 1):
        paper = scored.paper
        cells = [str(rank), "?" if paper.upvotes is None else str(paper.upvotes), paper.first_seen.isoformat()]
        withdrawn = f" [WITHDRAWN {paper.withdrawn_at}]" if paper.withdrawn_at else ""
        cells += [paper.title + withdrawn, byline(paper)]
        if scores:
            cells += [f"{scored.score:.1f}", scored.why()]
        table.add_row(*cells)
    Console(file=out, width=max(100, Console(file=out).width), markup=False, highlight=False).print(table)


def utc_minute(moment: str | None) -> str:
    """An ISO time with its offset as '2026-12-01 21:00Z' (UTC, to the minute), '-' for none."""
    if not moment:
        return "-"
    return f"{dt.datetime.fromisoformat(moment).astimezone(dt.UTC):%Y-%m-%d %H:%M}Z"


DIGESTS_SHOWN = 5  # `status` lists the soonest five subscribers' next digests; --json has all


def status_lines(report: Mapping[str, Any]) -> list[str]:
    """`status` for a terminal: every time in UTC, marked Z."""
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
                f"  {utc_minute(d['ingested_at'])}  {kind:8}  captured {d['as_of']}  {d['entries']:>4} entries "
                f"({d['new']} new, {d['updated']} updated)  {d['source']}"
            )
    else:
        lines.append("no dumps ingested yet")
    for source in report["sources"]:
        line = f"source {source['name']} ({source['kind']}): {source['state']}"
        if source["last_success"]:
            line += f", last success {utc_minute(source['last_success'])}"
        if source["state"] == "failing":
            line += f", error: {source['last_error']}"
        elif source.get("detail"):
            line += f": {source['detail']}"
        lines.append(line)
    if report["rejected"]:
        lines.append("rejected dumps (last 7 days, no newer good dump from their source since):")
        for r in report["rejected"]:
            lines.append(f"  {utc_minute(r['rejected_at'])}  {r['source']}: {r['file']}: {r['reason']}")
    for r in report["replicas"]:
        state = "alive" if r["alive"] else "gone"
        lines.append(
            f"replica {r['id'][:8]} on {r['host']} (pid {r['pid']}): {r['role']}, {state}, "
            f"since {utc_minute(r['since'])}, last seen {utc_minute(r['last_seen'])}"
        )
    digests = [job for job in report["next_runs"] if job["job"].startswith("digest:")]  # soonest first
    others = [job for job in report["next_runs"] if not job["job"].startswith("digest:")]
    for job in others + digests[:DIGESTS_SHOWN]:
        lines.append(f"next {job['job']}: {utc_minute(job['at'])}")
    if len(digests) > DIGESTS_SHOWN:
        later = len(digests) - DIGESTS_SHOWN
        lines.append(
            f"  and {later} more digest{'s' if later != 1 else ''} by {utc_minute(digests[-1]['at'])} "
            "(status --json lists them all)"
        )
    mail = report["mail"]
    counts = mail["counts"]
    lines.append(
        f"mail: {counts['sent'] + counts['accepted']} sent, {counts['pending'] + counts['sending']} pending, "
        f"{counts['failed']} failed, {counts['empty']} empty periods"
    )
    for problem in mail["problems"]:
        lines.append(f"  cannot send: {problem}")
    for m in mail["attention"]:
        when = f", next try {utc_minute(m['next_attempt_at'])}" if m["status"] == "pending" else ""
        head = f"  {m['status']:8} {m['subscriber']} for {utc_minute(m['period'])}"
        if not m["attempts"] and not m["last_error"]:  # left untried (a batch stopped at another's failure)
            lines.append(f"{head}: not tried yet{when}")
            continue
        tries = f"{m['attempts']} attempt{'s' if m['attempts'] != 1 else ''}"
        lines.append(f"{head} after {tries}{when}: {m['last_error'] or '-'}")
    return lines
