"""Thin commands: parse arguments, call one library function, print."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from paperdigest import __version__, clock, digest, health, jobs, render, score, settings
from paperdigest.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUNTIME, PaperdigestError, UsageError
from paperdigest.logs import setup_logging
from paperdigest.mail import outbox
from paperdigest.model import DumpResult
from paperdigest.report import backfill_summary, papers_table, progress_for, status_lines
from paperdigest.service import Service
from paperdigest.store import queries
from paperdigest.store.engine import describe

log = logging.getLogger("paperdigest")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _print_json(obj: Any, out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _describe(result: DumpResult) -> str:
    text = (
        f"{result.source}: captured {result.as_of}, {result.entries} entries: {result.new} new, "
        f"{result.updated} updated, {result.unchanged} unchanged"
    )
    if result.duplicate_dump:
        text += " (already ingested: nothing changed)"
    if result.dry_run:
        text += " (dry run: nothing written)"
    return text


def cmd_parse(args: argparse.Namespace) -> int:
    for listing in jobs.parse_paths([args.source], args.as_of):
        for entry in listing.entries:
            _print_json(entry.to_json(), sys.stdout)
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    engine = settings.engine(args)
    for result in jobs.ingest(engine, args.sources, args.as_of, dry_run=args.dry_run):
        if args.json:
            _print_json(result.to_json(), sys.stdout)
        else:
            print(_describe(result))
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace) -> int:
    engine = settings.engine(args)
    started = time.monotonic()
    results: list[DumpResult] = []
    failures: list[jobs.Failure] = []
    with progress_for(sys.stderr, enabled=not args.json) as progress:
        for outcome in jobs.backfill(engine, args.paths, args.as_of, on_start=progress.start):
            progress.advance()
            if isinstance(outcome, jobs.Failure):
                failures.append(outcome)
                progress.print_error(f"paperdigest: rejected: {outcome.error}")
                continue
            results.append(outcome)
            if args.json:
                _print_json(outcome.to_json(), sys.stdout)
    if not args.json:
        backfill_summary(sys.stdout, results, failures, time.monotonic() - started)
    return EXIT_BAD_INPUT if failures else EXIT_OK


def cmd_papers(args: argparse.Namespace) -> int:
    conf = settings.load(args)
    engine = settings.engine(args, conf)
    if args.topic is not None:
        if args.topic not in conf.topics:
            known = ", ".join(sorted(conf.topics)) or "none"
            raise UsageError(f"--topic: unknown topic {args.topic!r} (known: {known})")
        with engine.connect() as conn:
            pool = queries.papers_first_seen_since(conn, args.since) if args.since else queries.all_papers(conn)
        ranked = score.rank(pool, {args.topic: conf.topics[args.topic]}, conf.scoring)[: args.top]
        if args.json:
            for scored in ranked:
                _print_json(
                    {
                        **scored.paper.to_json(),
                        "score": round(scored.score, 3),
                        "why": scored.why(),
                        "explain": scored.explain(),
                    },
                    sys.stdout,
                )
        else:
            papers_table(sys.stdout, [s.paper for s in ranked], [f"{s.score:.1f}  {s.why()}" for s in ranked])
        return EXIT_OK
    with engine.connect() as conn:
        papers = queries.top_papers(conn, args.top, args.since)
    if args.json:
        for paper in papers:
            _print_json(paper.to_json(), sys.stdout)
    else:
        papers_table(sys.stdout, papers)
    return EXIT_OK


def cmd_digest(args: argparse.Namespace) -> int:
    conf = settings.load(args)
    engine = settings.engine(args, conf)
    subscribers = [conf.subscriber(args.subscriber)] if args.subscriber else list(conf.subscribers)
    if not subscribers:
        raise UsageError("the config has no subscribers: nothing to render")
    env = render.environment(conf.digest.templates)
    now = clock.now()
    for subscriber in subscribers:
        built = digest.build(engine, conf, subscriber, now, args.since)
        formats = [args.format] if args.format else (["html", "text"] if args.out else ["text"])
        for fmt in formats:
            body = render.render_html(built, env) if fmt == "html" else render.render_text(built, env)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                target = args.out / f"{outbox.safe_name(subscriber.email)}.{'html' if fmt == 'html' else 'txt'}"
                target.write_text(body, encoding="utf-8")
                print(f"{subscriber.email}: {len(built.papers)} papers -> {target}")
            else:
                if len(subscribers) > 1 or len(formats) > 1:
                    print(f"===== {subscriber.email} ({fmt}) =====")
                sys.stdout.write(body)
    return EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    conf = settings.load(args)
    engine = settings.engine(args, conf)
    now = clock.now()
    planned = outbox.enqueue_due(engine, conf, now, dry_run=args.dry_run)
    for item in planned:
        what = "nothing new: not sent" if item.status == "empty" else f"{item.papers} papers: {item.subject}"
        prefix = "would queue" if args.dry_run else "queued"
        print(f"{prefix} {item.subscriber} for {item.period:%Y-%m-%d %H:%M}Z: {what}")
    if args.dry_run:
        if not planned:
            print("nothing due")
        return EXIT_OK
    deliveries = outbox.deliver_due(engine, conf, outbox.transport_for(conf), now)
    for d in deliveries:
        print(f"{d.outcome} {d.subscriber} for {d.period:%Y-%m-%d %H:%M}Z: {d.detail}")
    if not planned and not deliveries:
        print("nothing due")
    return EXIT_RUNTIME if any(d.outcome != "sent" for d in deliveries) else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    conf = settings.load(args)
    service = Service(conf, args.db, args.config)
    if not args.once:
        return service.serve()
    report = service.once()
    for poll in report.polls:
        fresh = [r for r in poll.ingested if not r.duplicate_dump]
        print(
            f"source {poll.source}: {len(fresh)} new dumps ({sum(r.entries for r in fresh)} entries, "
            f"{sum(r.new for r in fresh)} new papers), {len(poll.ingested) - len(fresh)} already ingested"
            + (f", {len(poll.rejected)} rejected" if poll.rejected else "")
            + (f", {len(poll.waiting)} still being written" if poll.waiting else "")
        )
        for name, reason in poll.rejected:
            print(f"  rejected {name}: {reason}")
    for error in report.source_errors:
        print(error)
    for item in report.planned:
        what = "nothing new: not sent" if item.status == "empty" else f"{item.papers} papers"
        print(f"digest for {item.subscriber} ({item.period:%Y-%m-%d %H:%M}Z): {what}")
    for d in report.deliveries:
        print(f"mail to {d.subscriber}: {d.outcome}: {d.detail}")
    if report.mail_error:
        print(f"mail: {report.mail_error}")
    if conf.mail.transport == "file" and report.deliveries:
        folder = outbox.outbox_folder(conf)
        for d in report.deliveries:
            if d.outcome == "sent":
                name = outbox.file_name(d.subscriber, d.period)
                print(f"wrote {folder / (name + '.eml')} (HTML preview: {folder / (name + '.html')})")
    return report.exit_code()


def cmd_status(args: argparse.Namespace) -> int:
    conf = settings.load(args)
    url = settings.store_url(args, conf)
    engine = settings.engine(args, conf)
    now = clock.now()
    with engine.connect() as conn:
        counts = queries.counts(conn)
        dumps = queries.last_dumps(conn, args.last)
        mail = queries.outbox_summary(conn)
        attention = queries.outbox_attention(conn)
        states = queries.source_states(conn)
        failed_recently = queries.recent_failed_mail(conn, now - health.MAIL_LOOKBACK)
    sources = [health.source_health(s, states.get(s.name), now) for s in conf.sources]
    mail_ok = health.mail_healthy(failed_recently, attention)
    healthy = mail_ok and all(s.healthy for s in sources)
    report = {
        "healthy": healthy,
        "store": settings.display_url(url),
        **counts,
        "last_dumps": [
            {
                "source": d.source,
                "as_of": d.as_of.isoformat(),
                "ingested_at": d.ingested_at.isoformat(),
                "layout": d.layout,
                "backfill": d.backfill,
                "status": d.status,
                "entries": d.entries,
                "new": d.new,
                "updated": d.updated,
                "unchanged": d.unchanged,
            }
            for d in dumps
        ],
        "sources": [s.to_json() for s in sources],
        "next_runs": [
            *({"job": f"source:{s.name}", "at": s.next_poll.isoformat()} for s in sources),
            *({"job": f"digest:{email}", "at": at.isoformat()} for email, at in health.next_digests(conf, now)),
        ],
        "mail": {
            "healthy": mail_ok,
            "failed_last_7_days": failed_recently,
            "counts": {
                status: mail.get(status, 0) for status in ("pending", "sending", "accepted", "sent", "failed", "empty")
            },
            "attention": [
                {
                    "subscriber": m.subscriber,
                    "period": clock.iso(m.period),
                    "status": m.status,
                    "attempts": m.attempts,
                    "last_error": m.last_error,
                    "next_attempt_at": clock.iso(m.next_attempt_at),
                }
                for m in attention
            ],
        },
    }
    if args.json:
        _print_json(report, sys.stdout)
    else:
        for line in status_lines(report):
            print(line)
    return EXIT_OK if healthy else EXIT_RUNTIME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paperdigest",
        description="Ingest research-paper listings into a store and mail digests of them.",
        epilog="Exit codes: 0 success, 1 runtime failure (database, network, mail), 2 bad input or usage.",
    )
    parser.add_argument("--version", action="version", version=f"paperdigest {__version__}")
    parser.add_argument("--config", metavar="PATH", help="TOML config file (default: $PAPERDIGEST_CONFIG)")
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy URL of the store (default: $PAPERDIGEST_DB, "
        "else the config, else SQLite under the state directory)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    p = command("parse", cmd_parse, "parse a dump and print one JSON object per entry; stores nothing")
    p.add_argument("source", metavar="SOURCE", help="a dump file, a directory of dumps, or an http(s) URL")
    p.add_argument("--as-of", type=_date, metavar="DATE", help="capture date YYYY-MM-DD (default: from the file)")

    p = command("ingest", cmd_ingest, "ingest dumps into the store; a bad dump refuses the whole command")
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="dump files, directories, or http(s) URLs (a fetched body is archived first)",
    )
    p.add_argument("--as-of", type=_date, metavar="DATE", help="capture date YYYY-MM-DD (default: from the file)")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.add_argument("--json", action="store_true", help="one JSON object per dump")

    p = command(
        "backfill",
        cmd_backfill,
        "ingest many dumps as history, oldest capture first; bad dumps are reported and skipped (exit 2 at the end)",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="dump files, directories or globs")
    p.add_argument("--as-of", type=_date, metavar="DATE", help="capture date for every dump (rarely wanted)")
    p.add_argument("--json", action="store_true", help="one JSON object per dump, no table")

    p = command("papers", cmd_papers, "list the top papers by upvotes")
    p.add_argument("--top", type=_positive, default=20, metavar="N", help="how many (default 20)")
    p.add_argument("--since", type=_date, metavar="DATE", help="only papers first seen on or after DATE")
    p.add_argument("--topic", metavar="NAME", help="rank by a topic of the config, with scores and reasons")
    p.add_argument("--json", action="store_true", help="one JSON object per paper, best first")

    p = command("digest", cmd_digest, "render digests as previews: nothing is sent or marked sent")
    p.add_argument("--subscriber", metavar="EMAIL", help="only this subscriber (default: all)")
    p.add_argument("--format", choices=("html", "text"), help="default: text on stdout, both with --out")
    p.add_argument(
        "--since",
        type=_date,
        metavar="DATE",
        help="preview papers first seen on or after DATE (backfilled ones included) "
        "instead of the current period's window",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="write <email>.html / <email>.txt files into DIR")

    p = command("send", cmd_send, "build the digests that are due into the outbox and deliver them")
    p.add_argument("--dry-run", action="store_true", help="show what is due; store and send nothing")

    p = command("run", cmd_run, "the daemon: poll sources and send digests on their schedules")
    p.add_argument(
        "--once",
        action="store_true",
        help="one full cycle (poll every source, send what is due), then exit: 0 all well, "
        "1 a source or mail failed, 2 a dump was rejected",
    )

    p = command(
        "status",
        cmd_status,
        "store counts, last ingests, source health, mail, next runs; "
        "exits 1 when a source is failing or stale or mail is failing",
    )
    p.add_argument("--last", type=_positive, default=5, metavar="N", help="how many recent dumps to show")
    p.add_argument("--json", action="store_true", help="one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, daemon=args.command == "run")
    try:
        return int(args.func(args))
    except PaperdigestError as exc:
        print(f"paperdigest: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SQLAlchemyError as exc:
        print(f"paperdigest: error: the store failed: {describe(exc)}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("paperdigest: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
