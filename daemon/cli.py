"""Thin commands: parse arguments, call one library function, print."""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from paperdigest import __version__
from paperdigest.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUNTIME, PaperdigestError, UsageError

# Every import beyond the standard library, our errors and our version is made inside the command
# that needs it (each marked `# lazy:`): `--version`, `--help` and `status` start without SQLAlchemy's
# ORM, Alembic, Jinja2, httpx, APScheduler's scheduler or uvicorn (issue 13; tests/test_startup.py).
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from paperdigest import config
    from paperdigest.ingest import job as jobs
    from paperdigest.model import DumpResult
    from paperdigest.store.engine import Schema

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


def _config(args: argparse.Namespace) -> config.Settings:
    """--config, else $PAPERDIGEST_CONFIG, else the embedded default."""
    from paperdigest import config  # noqa: PLC0415  lazy: pydantic, for the commands that read a config

    return config.resolve(args.config)


def _store_url(args: argparse.Namespace, conf: config.Settings) -> str:
    """--db, else $PAPERDIGEST_DB, else the config's [store] url, else the embedded default."""
    from paperdigest.store.engine import resolve_url  # noqa: PLC0415  lazy: SQLAlchemy, for the commands with a store

    return resolve_url(args.db, conf.store.url)


# The engines a command opened, disposed when it ends: a caller of main() in-process (the tests, a
# host program) keeps no connection to a server behind it.
_OPENED: list[Engine] = []


def _engine(args: argparse.Namespace, conf: config.Settings, schema: Schema = "check") -> Engine:
    from paperdigest.store.engine import EMBEDDED_STORE, open_engine, url_origin  # noqa: PLC0415  lazy: SQLAlchemy, for the commands with a store

    origin = url_origin(args.db, conf.store.url, conf.origin)
    if schema == "read" and origin == EMBEDDED_STORE:
        # The embedded default's own file is never a typo: a fresh install's first `status` or
        # `papers` makes it, empty, as `run` would. A path someone gave must name a store.
        schema = "check"
    engine = open_engine(_store_url(args, conf), schema, origin)
    _OPENED.append(engine)
    return engine


def _topic_index(engine: Engine, conf: config.Settings) -> None:
    """Before a one-shot ingest: the store's first topic index built; one built for another
    config is kept (`run` rebuilds it; see topic_index.ensure)."""
    from paperdigest import topic_index  # noqa: PLC0415  lazy: the scoring, for the ingesting commands

    topic_index.ensure(engine, conf, rebuild=False)


def cmd_parse(args: argparse.Namespace) -> int:
    from paperdigest.ingest import job as jobs  # noqa: PLC0415  lazy: the parsers and sources, for this command only

    limits = _config(args).limits
    for _, listing in jobs.parse_paths([args.source], args.as_of, limits=limits):
        for entry in listing.entries:
            _print_json(entry.to_json(), sys.stdout)
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from paperdigest.ingest import job as jobs  # noqa: PLC0415  lazy: parsing, sources (httpx) and the writes

    conf = _config(args)
    engine = _engine(args, conf)
    if not args.dry_run:
        _topic_index(engine, conf)
    for result in jobs.ingest(engine, args.sources, args.as_of, dry_run=args.dry_run, limits=conf.limits):
        if args.json:
            _print_json(result.to_json(), sys.stdout)
        else:
            print(result.describe())
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace) -> int:
    if args.source is not None or args.first is not None or args.last is not None or args.refresh:
        return _backfill_source(args)
    if not args.paths:
        raise UsageError("backfill: name dumps (PATH...), or a source's days (--source NAME --from DATE --to DATE)")
    from paperdigest import topic_index  # noqa: PLC0415  lazy: the scoring, for the ingesting commands
    from paperdigest.ingest import job as jobs  # noqa: PLC0415  lazy: parsing, sources (httpx) and the writes

    conf = _config(args)
    engine = _engine(args, conf)
    # A first history load (no papers yet) builds the topic index once, at the end; an interrupted
    # one leaves it unbuilt, never stale (topic_index.defer_first_build).
    deferred = topic_index.defer_first_build(engine, conf)
    if not deferred:
        _topic_index(engine, conf)

    def outcomes(start: Callable[[int], None]) -> Iterator[Any]:
        yield from jobs.backfill(engine, args.paths, args.as_of, on_start=start, max_bytes=conf.limits.max_dump_bytes)
        if deferred:
            with jobs.collected_less():  # as the backfill's dumps: tens of thousands of papers matched
                _topic_index(engine, conf)

    return _show_backfill(args, outcomes)


def _backfill_source(args: argparse.Namespace) -> int:
    """`backfill --source NAME --from DATE --to DATE`: every day fetched through the source."""
    if args.paths or args.as_of:
        raise UsageError("backfill: give dumps (PATH...) or --source with --from and --to, not both")
    if args.source is None or args.first is None or args.last is None:
        raise UsageError("backfill --source NAME --from DATE --to DATE: all three are needed")
    from paperdigest.ingest import job as jobs  # noqa: PLC0415  lazy: parsing, sources (httpx) and the writes

    conf = _config(args)
    engine = _engine(args, conf)
    _topic_index(engine, conf)
    return _show_backfill(
        args,
        lambda start: jobs.backfill_source(
            engine, conf, args.source, args.first, args.last, refresh=args.refresh, on_start=start
        ),
        by_day=True,
    )


def _show_backfill(
    args: argparse.Namespace, outcomes: Callable[[Callable[[int], None]], Iterable[Any]], by_day: bool = False
) -> int:
    """Run a backfill (`outcomes(on_start)`), showing its progress on stderr and its JSON lines or
    summary on stdout. The summary comes once it has begun, even when it stops on an error (what
    was stored is shown); a usage error before the first dump or day is the error alone."""
    from paperdigest.ingest import job as jobs  # noqa: PLC0415  lazy: parsing, sources (httpx) and the writes
    from paperdigest.terminal import backfill_summary, progress_for  # noqa: PLC0415  lazy: rich, for the tables

    started = time.monotonic()
    results: list[DumpResult] = []
    failures: list[jobs.Failure] = []
    days: list[jobs.DayOutcome] = []
    begun = False

    def start(total: int) -> None:
        nonlocal begun
        begun = True
        progress.start(total)

    try:
        with progress_for(sys.stderr, enabled=not args.json, label="days" if by_day else "") as progress:
            for outcome in outcomes(start):
                progress.advance()
                if isinstance(outcome, jobs.DayOutcome):
                    days.append(outcome)
                elif isinstance(outcome, jobs.Failure):
                    failures.append(outcome)
                    progress.print_error(f"paperdigest: rejected: {outcome.error}")
                else:  # a DumpResult
                    results.append(outcome)
                    if args.json:
                        _print_json(outcome.to_json(), sys.stdout)
    finally:
        if not args.json and begun:
            backfill_summary(sys.stdout, results, failures, time.monotonic() - started, days if by_day else None)
    return EXIT_BAD_INPUT if failures else EXIT_OK


def cmd_papers(args: argparse.Namespace) -> int:
    from paperdigest import score  # noqa: PLC0415  lazy: the ranking and its queries
    from paperdigest.terminal import papers_table  # noqa: PLC0415  lazy: rich, for the table

    conf = _config(args)
    ranked = score.ranked_papers(_engine(args, conf, schema="read"), conf, args.topic, args.since, args.top)
    if args.json:
        for scored in ranked:
            _print_json(scored.to_json() if args.topic else scored.paper.to_json(), sys.stdout)
    else:
        papers_table(sys.stdout, ranked, scores=args.topic is not None)
    return EXIT_OK


def cmd_digest(args: argparse.Namespace) -> int:
    from paperdigest import clock, digest, subscribers  # noqa: PLC0415  lazy: the selection, scoring and queries
    from paperdigest.digest import render  # noqa: PLC0415  lazy: Jinja2, for the commands that render
    from paperdigest.mail.files import safe_name  # noqa: PLC0415  lazy: only --out names files

    conf = _config(args)
    engine = _engine(args, conf, schema="read")
    conf = subscribers.effective(engine, conf)
    chosen = [conf.subscriber(args.subscriber)] if args.subscriber else list(conf.subscribers)
    if not chosen:
        raise UsageError("there are no subscribers (config or `subscribers add`): nothing to render")
    env = render.environment(conf.digest.templates)
    now = clock.now()
    for subscriber in chosen:
        built = digest.build(engine, conf, subscriber, now, args.since)
        hint = digest.empty_preview_hint(built, now) if args.since is None else None
        if hint is not None:
            print(f"paperdigest: {hint}", file=sys.stderr)
        formats = [args.format] if args.format else (["html", "text"] if args.out else ["text"])
        for fmt in formats:
            body = render.render_html(built, env) if fmt == "html" else render.render_text(built, env)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                target = args.out / f"{safe_name(subscriber.email)}.{'html' if fmt == 'html' else 'txt'}"
                target.write_text(body, encoding="utf-8")
                print(f"{subscriber.email}: {len(built.papers)} papers -> {target}")
            else:
                if len(chosen) > 1 or len(formats) > 1:
                    print(f"===== {subscriber.email} ({fmt}) =====")
                sys.stdout.write(body)
    return EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    from paperdigest import clock, config  # noqa: PLC0415  lazy: pydantic
    from paperdigest.digest import job as digest_job  # noqa: PLC0415  lazy: selection, Jinja2, the outbox
    from paperdigest.mail import outbox, transport_for  # noqa: PLC0415  lazy: smtplib, the MIME message

    conf = _config(args)
    config.check_can_send(conf)
    engine = _engine(args, conf, schema="read" if args.dry_run else "check")
    _started()
    now = clock.now()
    planned = digest_job.queue_due(engine, conf, now, dry_run=args.dry_run)
    for item in planned:
        noun = "paper" if item.papers == 1 else "papers"
        what = "nothing new: not sent" if item.status == "empty" else f"{item.papers} {noun}: {item.subject}"
        prefix = "would queue" if args.dry_run else "queued"
        print(f"{prefix} {item.subscriber} for {item.period:%Y-%m-%d %H:%M}Z: {what}")
    if args.dry_run:
        if not planned:
            print("nothing due")
        return EXIT_OK
    deliveries = outbox.deliver_due(engine, conf, transport_for(conf), now)
    for d in deliveries:
        print(f"{d.outcome} {d.subscriber} for {d.period:%Y-%m-%d %H:%M}Z: {d.detail}")
    if not planned and not deliveries:
        print("nothing due")
    return EXIT_RUNTIME if any(d.outcome != "sent" for d in deliveries) else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from paperdigest import config  # noqa: PLC0415  lazy: pydantic
    from paperdigest.service.scheduler import Service  # noqa: PLC0415  lazy: APScheduler and every stage, for the daemon

    conf = _config(args)
    config.check_can_send(conf)
    service = Service(conf, args.db, args.config)
    _OPENED.append(service.engine)
    if not args.once:
        return service.serve()
    report = service.once()
    for line in report.lines(conf):
        print(line)
    return report.exit_code()


def cmd_status(args: argparse.Namespace) -> int:
    from paperdigest import clock  # noqa: PLC0415  lazy: the clock seam (cheap; kept beside the others)
    from paperdigest.service import health  # noqa: PLC0415  lazy: the store's Core queries and the schedules
    from paperdigest.store.engine import shown_url  # noqa: PLC0415  lazy: SQLAlchemy
    from paperdigest.terminal import status_lines  # noqa: PLC0415  lazy: plain text, no rich

    conf = _config(args)
    store = shown_url(_store_url(args, conf))
    report = health.status_report(conf, _engine(args, conf, schema="read"), store, clock.now(), args.last)
    if args.json:
        _print_json(report, sys.stdout)
    else:
        for line in status_lines(report):
            print(line)
    return EXIT_OK if report["healthy"] else EXIT_RUNTIME


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from paperdigest.store import migrate  # noqa: PLC0415  lazy: Alembic, for the schema commands

    done = migrate.upgrade(_engine(args, _config(args), schema="none"))
    if done.changed:
        print(f"store upgraded from {done.before or 'an empty store'} to schema revision {done.after}")
    else:
        print(f"store already at schema revision {done.after} (the newest)")
    return EXIT_OK


def cmd_db_current(args: argparse.Namespace) -> int:
    from paperdigest.store import migrate  # noqa: PLC0415  lazy: Alembic, for the schema commands
    from paperdigest.store.engine import no_store, sqlite_file  # noqa: PLC0415  lazy: SQLAlchemy, for the commands with a store

    conf = _config(args)
    newest = migrate.head()
    store = sqlite_file(_store_url(args, conf))
    why = no_store(store) if store is not None else None
    if store is not None and why is not None:  # a question about the store does not create or change one
        shown = "nothing created" if why == "no such file" else f"{why}; nothing changed"
        print(f"no store at {store} ({shown}); this paperdigest creates revision {newest}")
        return EXIT_OK
    engine = _engine(args, conf, schema="none")
    with engine.connect() as conn:
        revision = migrate.current(conn)
    if revision is None:
        print(f"empty store (no schema yet); this paperdigest creates revision {newest}")
    elif revision == newest:
        print(f"{revision} (the newest)")
    else:
        print(f"{revision} (this paperdigest needs {newest}: run `paperdigest db upgrade`)")
    return EXIT_OK


def cmd_web(args: argparse.Namespace) -> int:
    from paperdigest.web import server as web_server  # noqa: PLC0415  lazy: Starlette and uvicorn, for the web side

    conf = _config(args)
    web_server.require_web(conf)
    # A reader, as `status` is: a mistyped store path is refused, not made an empty store to serve.
    return web_server.serve(conf, _engine(args, conf, schema="read"))


def cmd_subscribers_add(args: argparse.Namespace) -> int:
    from paperdigest import subscribers  # noqa: PLC0415  lazy: the store's queries

    conf = _config(args)
    values: dict[str, Any] = {"email": args.email}
    if args.topics is not None:  # not given: a subscriber the store keeps keeps its topics
        values["topics"] = [t.strip() for t in args.topics.split(",") if t.strip()]
    for key in ("name", "cron", "timezone", "format", "max_papers", "min_score"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    print(subscribers.add(_engine(args, conf), conf, values))
    return EXIT_OK


def cmd_subscribers_list(args: argparse.Namespace) -> int:
    from paperdigest import clock, subscribers  # noqa: PLC0415  lazy: the store's queries

    conf = _config(args)
    listed = subscribers.subscriptions(_engine(args, conf, schema="read"), conf)
    if args.json:
        for subscription in listed:
            _print_json(subscription.to_json(), sys.stdout)
        return EXIT_OK
    if not listed:
        print("no subscribers (add them to the config, or with `paperdigest subscribers add`)")
    for s in listed:
        state = "subscribed" if s.subscribed else f"unsubscribed {clock.as_utc(s.unsubscribed_at):%Y-%m-%d %H:%MZ}"
        topics = ", ".join(s.settings.topics) or "everything"
        print(
            f"{s.settings.email}  [{s.origin}, {state}]  topics: {topics}; cron {s.settings.cron!r} "
            f"{s.settings.timezone}; {s.settings.format}; at most {s.settings.max_papers}"
        )
    return EXIT_OK


def cmd_subscribers_remove(args: argparse.Namespace) -> int:
    from paperdigest import subscribers  # noqa: PLC0415  lazy: the store's queries

    conf = _config(args)
    print(subscribers.remove(_engine(args, conf), conf, args.email))
    return EXIT_OK


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
        "ingest many dumps as history, oldest capture first; bad dumps are reported and skipped (exit 2 at the "
        "end). Or fetch history through a huggingface source, day by day: "
        "`backfill --source hf --from 2025-01-01 --to 2025-12-31` (days already ingested are skipped)",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="dump files, directories or globs")
    p.add_argument("--as-of", type=_date, metavar="DATE", help="capture date for every dump (rarely wanted)")
    p.add_argument("--json", action="store_true", help="one JSON object per dump, no table")
    p.add_argument("--source", metavar="NAME", help="a huggingface source of the config: fetch its days instead")
    p.add_argument("--from", dest="first", type=_date, metavar="DATE", help="with --source: the first day")
    p.add_argument("--to", dest="last", type=_date, metavar="DATE", help="with --source: the last day (UTC)")
    p.add_argument(
        "--refresh", action="store_true", help="with --source: fetch days already ingested again (newer upvotes)"
    )

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
        "store counts, last ingests, source health, rejected dumps, replicas, mail, next runs; exits 1 when "
        "a source is failing, stale or empty, a dump was rejected lately, or mail is failing or cannot be sent",
    )
    p.add_argument("--last", type=_positive, default=5, metavar="N", help="how many recent dumps to show")
    p.add_argument("--json", action="store_true", help="one JSON object")

    command("web", cmd_web, "the web side: one-click unsubscribe, the digest archive, paper pages, Atom feeds ([web])")
    _add_subscribers_command(command("subscribers", _subscribers_usage, SUBSCRIBERS_HELP))
    _add_db_command(command("db", _db_usage, DB_HELP))
    return parser


SUBSCRIBERS_HELP = "subscribers kept in the store, beside the config's: `subscribers add|list|remove`"
DB_HELP = "the store's schema: `db upgrade` applies migrations, `db current` shows the revision"


def _add_subscribers_command(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="subscribers_command", metavar="ACTION", required=True)
    sub = actions.add_parser("add", help="add a subscriber (or change one, or subscribe an address again)")
    sub.description = (
        "add a subscriber to the store, checked like the config; the daemon picks it up by itself. "
        "For an address the store keeps already, only the options given change (the defaults below are for "
        "a new one): `subscribers add ada@example.org --format text`"
    )
    sub.set_defaults(func=cmd_subscribers_add)
    sub.add_argument("email", metavar="EMAIL")
    sub.add_argument("--topics", metavar="A,B", help="topics of the config, comma-separated (default: everything)")
    sub.add_argument("--name", help="a display name")
    sub.add_argument("--cron", help="when, in crontab(5) form (default '0 7 * * *')")
    sub.add_argument("--timezone", help="an IANA name such as Europe/Berlin (default UTC)")
    sub.add_argument("--format", choices=("html", "text", "both"), help="default both")
    sub.add_argument("--max-papers", type=_positive, metavar="N", help="at most N papers (default 20)")
    sub.add_argument("--min-score", type=float, metavar="X", help="at least this score (default 0)")
    sub = actions.add_parser("list", help="every subscriber, where it comes from, and whether it is mailed")
    sub.description = "every subscriber: the config's and the store's, subscribed or not"
    sub.set_defaults(func=cmd_subscribers_list)
    sub.add_argument("--json", action="store_true", help="one JSON object per subscriber")
    sub = actions.add_parser("remove", help="remove a subscriber kept in the store")
    sub.description = "remove a subscriber kept in the store (one the config names is removed there)"
    sub.set_defaults(func=cmd_subscribers_remove)
    sub.add_argument("email", metavar="EMAIL")


def _add_db_command(p: argparse.ArgumentParser) -> None:
    db = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    sub = db.add_parser("upgrade", help="bring the store's schema up to date (idempotent)")
    sub.description = "bring the store's schema up to date; exit 0 when it already is"
    sub.set_defaults(func=cmd_db_upgrade)
    sub = db.add_parser("current", help="show the store's schema revision")
    sub.description = "show the store's schema revision, and whether it is the newest"
    sub.set_defaults(func=cmd_db_current)


def _subscribers_usage(args: argparse.Namespace) -> int:  # argparse requires an action: never reached
    raise UsageError("subscribers: say `add`, `list` or `remove`")


def _db_usage(args: argparse.Namespace) -> int:  # argparse requires an action: never reached
    raise UsageError("db: say `upgrade` or `current`")


def _store_failure(exc: Exception) -> str | None:
    """What a failing store said (one line), when `exc` is SQLAlchemy's; None for anything else. A
    command that raised it imported SQLAlchemy already: one that did not, never has to."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415  lazy: loaded already, by the command that failed

    from paperdigest.store.engine import describe  # noqa: PLC0415  lazy: likewise

    return describe(exc) if isinstance(exc, SQLAlchemyError) else None


# Python collects its youngest generation every 700 allocations by default. Start-up allocates a
# few hundred thousand objects that live as long as the process (SQLAlchemy's and pydantic's
# classes, the config's models), and the collector walked them dozens of times before a command
# did any work: 20-30 ms of `status` (its whole run is ~0.33 s). Every 10,000 allocations instead;
# cyclic garbage still goes, a little later. For the process only: main() called from a host
# program (or the tests) leaves the host's collector alone.
GC_THRESHOLD = (10_000, 10, 10)
# `status` is start-up and a read of bounded size (counts, the last --last dumps, at most 20 outbox
# rows and 20 rejections, the sources, replicas and subscribers). In a process of its own
# (console()) it runs without the cyclic collector: even every 10,000 allocations, collections
# walked start-up's objects for ~30 M of its ~1,450 M instructions (callgrind); reference counting
# frees what it drops. And it ends without the interpreter's teardown (freeing every module and
# object one by one, ~90 M more, though the process is about to go): the exit handlers run and
# the output is flushed as Python's own exit does, then the process exits (_exit_now).
QUICK = frozenset({"status"})
# `send` builds and drops many objects (1,000 digests: their windows, renders and messages), so it
# keeps the collector; but it too ends without the teardown: ~0.1 s of CPU of a 1,000-digest send
# (~2 s), spent freeing what the process is about to give back whole. Its engines are disposed
# (_run), its SMTP session quit and its heartbeat thread joined before the command returns.
NO_TEARDOWN = QUICK | {"send"}
# And `send` starts without the collector: the ~120,000 objects of its start-up (the modules,
# SQLAlchemy's and pydantic's classes, the config of 1,000 subscribers) are then frozen (gc.freeze:
# kept out of every later collection, at no walk) and the collector turned back on for the work
# (_started). Collections walked them some 16 times, ~35 ms of a 1,000-digest send's ~2 s of CPU.
FROZEN_START = frozenset({"send"})
_paused: list[bool] = []  # main() turned the collector off for the start-up of its command


def console() -> int:
    """The `paperdigest` command (and `python -m paperdigest`): main() in a process of its own."""
    gc.set_threshold(*GC_THRESHOLD)
    # pydantic looks for plugins of its own (an entry point group) when it builds the first model:
    # it reads the entry points of every installed distribution, ~22 M instructions of `status` in
    # this project's venv, more in a fuller environment. paperdigest uses none: the command skips
    # the search (pydantic's documented switch). Set to anything, even empty, it is left as given.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    return main(own_process=True)


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """The command line. `own_process`: called by console(), in a process that ends with the
    command (the collector and the exit may be tuned for it: QUICK, NO_TEARDOWN); a host program calling
    main() keeps its own collector, and main() returns to it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quick = own_process and args.command in QUICK
    if quick:
        gc.disable()
    elif own_process and args.command in FROZEN_START and gc.isenabled():
        gc.disable()
        _paused.append(True)
    from paperdigest.service.logs import setup_logging  # noqa: PLC0415  lazy: after --version and --help have exited

    setup_logging(args.verbose, daemon=args.command == "run")
    try:
        code = _run(args)
    finally:
        if _paused:  # the command failed before it started its work
            _paused.clear()
            gc.enable()
    if own_process and args.command in NO_TEARDOWN and sys.getprofile() is None:
        _exit_now(code)  # not under a profiler (cProfile writes its figures after main returns)
    return code


def _run(args: argparse.Namespace) -> int:
    """The command, its errors as one line and an exit code; the engines it opened disposed."""
    try:
        return int(args.func(args))
    except PaperdigestError as exc:
        print(f"paperdigest: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("paperdigest: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # a full disk, a read-only folder: one line, never a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"paperdigest: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except Exception as exc:
        failed = _store_failure(exc)
        if failed is None:
            raise
        print(f"paperdigest: error: the store failed: {failed}", file=sys.stderr)
        return EXIT_RUNTIME
    finally:
        while _OPENED:
            _OPENED.pop().dispose()


def _started() -> None:
    """The command's start-up is done (its modules imported, its config read): what main() paused
    the collector for (FROZEN_START) is frozen, and the collector is on again. Nothing otherwise."""
    if _paused:
        _paused.clear()
        gc.freeze()
        gc.enable()


def _exit_now(code: int) -> None:
    """End the process with `code` as Python's exit would, less the teardown of its objects: the
    exit handlers (atexit: logging's flush, ...) run, stdout and stderr are flushed, then
    os._exit. The store's connections are closed already (_run disposed its engines). When a
    flush fails (a reader that closed the pipe), it returns: the interpreter's own exit then
    reports it, as it always has."""
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)
