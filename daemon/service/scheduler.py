"""The daemon: APScheduler jobs over the pipeline, one instance per store, systemd-friendly.

lock the store                              # a second daemon exits with a clear message
startup job: poll every source, then send   # catch-up: what is due is decided by the store
every source: poll on its `every` / `cron`  # executor "ingest": one at a time
every subscriber: send on its cron (in its timezone), plus a tick that retries mail
                                            # executor "mail": one at a time
SIGTERM: finish the job in flight, exit 0;  SIGHUP: reload the config (a bad one is refused)
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from paperdigest import clock, config, subscribers, topic_index
from paperdigest.config import Settings
from paperdigest.digest.job import Planned, queue_due
from paperdigest.errors import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_RUNTIME,
    ConfigError,
    PaperdigestError,
    SourceError,
    StoreError,
)
from paperdigest.ingest.job import poll_source, record_poll
from paperdigest.mail import outbox, transport_for
from paperdigest.mail.files import written_files
from paperdigest.model import Day, PollResult
from paperdigest.service.crontab import CrontabTrigger
from paperdigest.service.health import empty_day, empty_is_expected, next_digests, poll_interval
from paperdigest.service.leader import Leadership, Replica, beating
from paperdigest.service.lock import AlreadyRunning, InstanceLock, lock_path
from paperdigest.service.notify import Notifier
from paperdigest.service.schedule import cron_trigger, parse_every
from paperdigest.sources import Source, make_source
from paperdigest.sources.directory import DirectorySource
from paperdigest.store import migrate, queries
from paperdigest.store.engine import describe, open_engine, resolve_url, shown_url, url_origin

log = logging.getLogger("paperdigest")

# Our crontab(5) trigger answers APScheduler's one question (get_next_fire_time) without importing
# APScheduler (crontab.py): it becomes one of its triggers here, where the daemon hands it over.
BaseTrigger.register(CrontabTrigger)

@dataclass
class CycleReport:
    polls: list[PollResult] = field(default_factory=list)
    source_errors: list[str] = field(default_factory=list)
    deliveries: list[outbox.Delivery] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    mail_error: str | None = None

    def lines(self, settings: Settings) -> list[str]:
        """What `run --once` prints: each source's poll, each digest, each delivery."""
        lines = []
        for poll in self.polls:
            fresh = [r for r in poll.ingested if not r.duplicate_dump]
            lines.append(
                f"source {poll.source}: {_count(len(fresh), 'new dump')} ({sum(r.entries for r in fresh)} entries, "
                f"{_count(sum(r.new for r in fresh), 'new paper')}), {len(poll.ingested) - len(fresh)} already ingested"
                + (f", {len(poll.rejected)} rejected" if poll.rejected else "")
                + (f", {len(poll.waiting)} still being written" if poll.waiting else "")
                + (f"; days asked for: {', '.join(_day_text(d) for d in poll.days)}" if poll.days else "")
            )
            lines += [f"  rejected {rejected.file}: {rejected.reason}" for rejected in poll.rejected]
        lines += self.source_errors
        for item in self.planned:
            what = "nothing new: not sent" if item.status == "empty" else f"{item.papers} papers"
            lines.append(f"digest for {item.subscriber} ({item.period:%Y-%m-%d %H:%M}Z): {what}")
        lines += [f"mail to {d.subscriber}: {d.outcome}: {d.detail}" for d in self.deliveries]
        if self.mail_error:
            lines.append(f"mail: {self.mail_error}")
        for d in self.deliveries:
            written = written_files(settings, d.subscriber, d.period) if d.outcome == "sent" else None
            if written is not None:
                lines.append(f"wrote {written[0]} (HTML preview: {written[1]})")
        return lines

    def exit_code(self) -> int:
        if self.source_errors or self.mail_error or any(d.outcome != "sent" for d in self.deliveries):
            return EXIT_RUNTIME
        if any(p.rejected for p in self.polls):
            return EXIT_BAD_INPUT
        return EXIT_OK


class Service:
    def __init__(
        self, settings: Settings, db_flag: str | None, config_flag: str | None, notifier: Notifier | None = None
    ) -> None:
        self.settings = settings
        self.config_flag = config_flag
        self._warn_exposed()
        self.store_url = resolve_url(db_flag, settings.store.url)
        origin = url_origin(db_flag, settings.store.url, settings.origin)
        self.engine: Engine = open_engine(self.store_url, schema="create", origin=origin)  # upgraded under the lock
        self.notifier = notifier or Notifier()
        self.sources: dict[str, Source] = {s.name: make_source(s, settings.limits) for s in settings.sources}
        self.stopping = threading.Event()
        # Set by the signal handlers, read by the main loop. Plain attributes on purpose: a
        # handler runs in the main thread between any two bytecodes, possibly while that thread
        # holds the lock inside Event.wait, so a handler calling Event.set() can deadlock.
        self.stop_signalled = False
        self._next_ping = 0.0  # monotonic: when a standby next feeds the watchdog
        self._standing_by = False
        self.reload_signalled = False
        self.last_ingest = "none yet"
        self.scheduler: BackgroundScheduler | None = None
        self.replica = Replica(self.engine, "standby", parse_every(settings.daemon.takeover))
        self.digest_jobs: set[tuple[str, str, str]] = set()

    # --- the work ------------------------------------------------------------------------

    def poll(self, name: str, report: CycleReport | None = None) -> None:
        source = self.sources.get(name)
        if source is None:  # removed by a reload since the job was scheduled
            return
        now = clock.now()
        try:
            result = poll_source(self.engine, source, now)
        except Exception as exc:  # any failure is the source's failure: recorded, shown, never fatal
            if not isinstance(exc, PaperdigestError | OSError):
                log.exception("source %s failed unexpectedly", name)
                exc = SourceError(f"source {name}: unexpected {type(exc).__name__}: {exc}")
            log.error("source %s failed: %s", name, exc)
            record_poll(self.engine, name, now, exc)
            if report is not None:
                report.source_errors.append(str(exc))
            return
        record_poll(self.engine, name, now, result)
        if result.changed:
            self.last_ingest = f"{now:%Y-%m-%d %H:%M}Z {name}: {result.new} new"
        if result.empty:
            log.warning("source %s yielded zero entries", name)
        self._log_days(name, result, now)
        if report is not None:
            report.polls.append(result)
        self._update_status()

    def _log_days(self, name: str, result: PollResult, now: dt.datetime) -> None:
        """A source fetched by day: a day without papers is news only on a weekday past its hour."""
        settings = next((s for s in self.settings.sources if s.name == name), None)
        if settings is None:
            return
        for day in result.days:
            warning = empty_day(settings, day.day, day.items, now)
            if warning is not None:
                log.warning("source %s: %s", name, warning)
            elif day.items == 0:
                expected = "as expected on a weekend or holiday" if empty_is_expected(settings, day.day) else "yet"
                log.info("source %s: %s: no papers %s", name, day.day, expected)

    def send(self, report: CycleReport | None = None) -> None:
        if self.stopping.is_set():  # a tick already due when SIGTERM came: build nothing more, exit
            return
        now = clock.now()
        try:
            planned = queue_due(self.engine, self.settings, now, replica=self.replica)
            deliveries = outbox.deliver_due(
                self.engine,
                self.settings,
                transport_for(self.settings),
                now,
                stop=self.stopping.is_set,
                replica=self.replica,
            )
        except (PaperdigestError, SQLAlchemyError) as exc:
            log.error("sending failed: %s", exc)
            if report is not None:
                report.mail_error = str(exc)
            return
        for item in planned:
            log.info(
                "digest for %s (%s): %s",
                item.subscriber,
                f"{item.period:%Y-%m-%d %H:%M}Z",
                "empty, not sent" if item.status == "empty" else f"{item.papers} papers queued",
            )
        for d in deliveries:
            level = logging.INFO if d.outcome in ("sent", "waiting") else logging.WARNING  # waiting: its cause is told
            log.log(level, "mail to %s (%s): %s: %s", d.subscriber, f"{d.period:%Y-%m-%d %H:%M}Z", d.outcome, d.detail)
        if report is not None:
            report.planned.extend(planned)
            report.deliveries.extend(deliveries)
        self._refresh_digest_jobs()
        self._update_status()

    def cycle(self) -> CycleReport:
        """One full cycle: poll every source, then send what is due. A folder that holds files
        still being written is polled once more after its settle time: a file dropped just before
        `run --once` is taken in this cycle if it has not changed meanwhile, not left for a next run."""
        report = CycleReport()
        self._topic_index()
        for name in list(self.sources):
            self.poll(name, report)
            first = report.polls[-1] if report.polls and report.polls[-1].source == name else None
            source = self.sources.get(name)
            if first is None or not first.waiting or not isinstance(source, DirectorySource):
                continue
            clock.sleep(source.settle.total_seconds())
            report.polls.pop()
            self.poll(name, report)
            if report.polls and report.polls[-1].source == name:  # one line for the source: both polls
                again = report.polls[-1]
                again.ingested[:0], again.rejected[:0] = first.ingested, first.rejected
            else:  # the second poll failed (its error is reported): keep what the first one did
                report.polls.append(first)
        self.send(report)
        return report

    # --- the daemon ----------------------------------------------------------------------

    def _update_status(self) -> None:
        upcoming = next_digests(subscribers.effective(self.engine, self.settings), clock.now())  # config's and store's
        nxt = f"{upcoming[0][1]:%Y-%m-%d %H:%M}Z {upcoming[0][0]}" if upcoming else "none"
        self.notifier.status(f"last ingest: {self.last_ingest}; next digest: {nxt}")

    def _add_digest_jobs(self, scheduler: BackgroundScheduler, common: dict[str, Any]) -> None:
        """A job per subscriber, on its cron: the config's and the store's (`subscribers add`)."""
        mailed = subscribers.effective(self.engine, self.settings).subscribers
        self.digest_jobs = {(s.email.lower(), s.cron, s.timezone) for s in mailed}
        for job in scheduler.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        for subscriber in mailed:
            scheduler.add_job(
                self.send,
                cron_trigger(subscriber.cron, subscriber.timezone),
                id=f"digest:{subscriber.email}",
                executor="mail",
                **common,
            )

    def _refresh_digest_jobs(self) -> None:
        """Subscribers added or removed in the store since the jobs were made: make them again
        (the tick sends what is due meanwhile, so nothing waits for a restart)."""
        if self.scheduler is None:
            return
        try:
            mailed = subscribers.effective(self.engine, self.settings).subscribers
        except SQLAlchemyError as exc:
            log.warning("cannot read the subscribers: %s", exc)
            return
        if {(s.email.lower(), s.cron, s.timezone) for s in mailed} != self.digest_jobs:
            self._add_digest_jobs(self.scheduler, self._job_options())
            log.info("subscribers changed in the store: %d digest jobs", len(self.digest_jobs))

    def _job_options(self) -> dict[str, Any]:
        return {
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(parse_every(self.settings.daemon.misfire_grace).total_seconds()),
            "replace_existing": True,
        }

    def _add_jobs(self, scheduler: BackgroundScheduler) -> None:
        common = self._job_options()
        now = clock.now()
        for source in self.settings.sources:
            trigger: Any = (
                cron_trigger(source.cron)
                if source.cron
                else IntervalTrigger(seconds=poll_interval(source).total_seconds())
            )
            scheduler.add_job(
                self.poll, trigger, args=[source.name], id=f"source:{source.name}", executor="ingest", **common
            )
        self._add_digest_jobs(scheduler, common)
        tick = parse_every(self.settings.daemon.tick)
        scheduler.add_job(
            self.send,
            IntervalTrigger(seconds=tick.total_seconds()),
            id="mail:tick",
            executor="mail",
            next_run_time=now + tick,
            **common,
        )

    def _startup(self) -> None:
        """Catch up after downtime: poll everything, then send what the outbox says is due."""
        self._topic_index()
        for name in list(self.sources):
            if self.stopping.is_set():
                return
            self.poll(name)
        if self.scheduler is not None and not self.stopping.is_set():
            self.scheduler.add_job(self.send, id="mail:startup", executor="mail", replace_existing=True)

    def reload(self) -> None:
        try:
            fresh = config.resolve(self.config_flag)
            config.check_can_send(fresh)
        except ConfigError as exc:
            log.error("new config refused, keeping the running one: %s", exc)
            return
        except Exception as exc:  # whatever a broken file does, the running config stays
            log.error("new config refused, keeping the running one: %s: %s", type(exc).__name__, exc)
            return
        if resolve_url(None, fresh.store.url) != resolve_url(None, self.settings.store.url):
            log.warning("the store URL changed in the config: that takes a restart; keeping the current store")
        self.settings = fresh
        self.sources = {s.name: make_source(s, fresh.limits, self.sources.get(s.name)) for s in fresh.sources}
        if self.scheduler is not None:
            self.scheduler.remove_all_jobs()
            self._add_jobs(self.scheduler)
            self._add_watchdog(self.scheduler)
        log.info("config reloaded: %d sources, %d subscribers", len(fresh.sources), len(fresh.subscribers))
        if self.scheduler is not None and (self.replica.role == "leader" or self.engine.dialect.name != "postgresql"):
            self.scheduler.add_job(self._topic_index, id="topic-index", executor="ingest", replace_existing=True)

    def _add_watchdog(self, scheduler: BackgroundScheduler) -> None:
        if self.notifier.watchdog is not None:
            scheduler.add_job(
                self.notifier.ping,
                IntervalTrigger(seconds=self._watchdog_every()),
                id="watchdog",
                executor="default",
                replace_existing=True,
                coalesce=True,
                max_instances=1,
            )

    def _warn_exposed(self) -> None:
        for warning in config.exposure_warnings(self.settings):
            log.warning("%s", warning)

    def _upgrade_store(self) -> None:
        """Bring the store's schema up to date: the daemon does at start what `db upgrade` does."""
        try:
            done = migrate.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot upgrade the store {shown_url(self.store_url)}: {describe(exc)}") from None
        if done.changed:
            log.info("store upgraded from schema %s to %s", done.before or "(empty)", done.after)

    def _topic_index(self) -> None:
        """The topic index rebuilt if the config's topics or weights changed (logged): before the
        polls, on the ingest executor (a rebuild of a large store takes a while: after READY, with
        the watchdog fed). A store that cannot take it is logged: `papers --topic` reads the
        papers meanwhile."""
        try:
            topic_index.ensure(self.engine, self.settings)
        except StoreError as exc:
            log.error("%s", exc)

    def serve(self) -> int:
        """The daemon. SQLite: one per store (a file lock). PostgreSQL: lead or stand by."""
        if self.engine.dialect.name != "postgresql":
            with InstanceLock(lock_path(self.store_url)):
                self._upgrade_store()
                self._install_signals()
                self.notifier.ready("started; catching up")
                self._lead(lambda: True)
            return self._stopped()
        self._install_signals()
        leadership = Leadership(self.engine, self._takeover())
        self.notifier.ready("started; trying the lead")
        try:
            while not self.stop_signalled:
                if leadership.try_lead():
                    self._standing_by = False
                    log.info("this replica (%s) leads the store", self.replica.id[:8])
                    self._upgrade_store()
                    self._lead(leadership.still_leading)
                    leadership.release()
                    if not self.stop_signalled:
                        log.warning("lost the lead; standing by")
                    continue
                self._stand_by(leadership)
        finally:
            leadership.release()
        return self._stopped()

    def _stand_by(self, leadership: Leadership) -> None:
        """Wait as a standby: beat, keep systemd's watchdog fed (a standby is a healthy process),
        and try the lead again every `replica.every` seconds."""
        holder = leadership.holder()
        if not self._standing_by:  # said once, each time it starts standing by
            log.info("this replica (%s) stands by: %s leads the store", self.replica.id[:8], holder)
            self._standing_by = True
        self.replica.beat("standby")
        self.notifier.status(f"standby: {holder} leads")
        deadline = clock.monotonic() + self.replica.every
        while not self.stop_signalled and clock.monotonic() < deadline:
            self._feed_watchdog()
            self._between_ticks()

    def _feed_watchdog(self) -> None:
        """WATCHDOG=1 every half of WatchdogSec while standing by (a leader's scheduler does it)."""
        if self.notifier.watchdog is None:
            return
        if clock.monotonic() >= self._next_ping:
            self.notifier.ping()
            self._next_ping = clock.monotonic() + self._watchdog_every()

    def _watchdog_every(self) -> float:
        """Seconds between WATCHDOG=1: half of WatchdogSec, as sd_watchdog_enabled(3) advises."""
        assert self.notifier.watchdog is not None
        return max(self.notifier.watchdog.total_seconds() / 2, 0.5)

    def _lead(self, keep_leading: Callable[[], bool]) -> None:
        """Schedule and run the jobs until asked to stop or `keep_leading()` says the lead is lost."""
        scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={
                "default": ThreadPoolExecutor(1),
                "ingest": ThreadPoolExecutor(1),
                "mail": ThreadPoolExecutor(1),
            },
        )
        self.scheduler = scheduler
        self.stopping.clear()
        self._add_jobs(scheduler)
        self._add_watchdog(scheduler)
        scheduler.add_job(self._startup, id="startup", executor="ingest")
        # Claims and reservations of a sender that died (a leader before us, or this host's last
        # run) are taken over once its heartbeat is older than the takeover time: look again then,
        # not only at the next tick (which may be past a minutely period).
        scheduler.add_job(
            self._send_after_takeover,
            "date",
            run_date=dt.datetime.now(dt.UTC) + self._takeover() + dt.timedelta(seconds=1),
            id="mail:takeover",
            executor="mail",
            misfire_grace_time=None,
        )
        self.last_ingest = self._last_ingest_in_store()
        self._update_status()
        scheduler.start()
        log.info(
            "paperdigest started: %d sources, %d subscribers, store %s",
            len(self.settings.sources),
            len(subscribers.effective(self.engine, self.settings).subscribers),  # the config's and the store's
            shown_url(self.store_url),
        )
        self.replica.beat("leader")
        next_beat = clock.monotonic() + self.replica.every
        while not self.stop_signalled:
            self._between_ticks()
            if clock.monotonic() >= next_beat:
                if not keep_leading():
                    break
                self.replica.beat("leader")
                next_beat = clock.monotonic() + self.replica.every
        self.stopping.set()
        log.info("stopping: finishing the job in flight")
        scheduler.shutdown(wait=True)
        self.scheduler = None

    def _last_ingest_in_store(self) -> str:
        """The store's newest ingest, so that a restarted daemon or a new leader does not say
        "none yet" in systemd's STATUS until its own first ingest."""
        with self.engine.connect() as conn:
            newest = queries.last_dumps(conn, 1)
        if not newest:
            return "none yet"
        dump = newest[0]
        return f"{clock.as_utc(dump.ingested_at):%Y-%m-%d %H:%M}Z {dump.source}: {dump.new} new"

    def _send_after_takeover(self) -> None:
        log.info("the takeover time has passed since this replica began to lead: looking for what a dead sender left")
        self.send()

    def _between_ticks(self) -> None:
        if self.reload_signalled:
            self.reload_signalled = False
            self.reload()
        clock.sleep(0.2)

    def _stopped(self) -> int:
        self.notifier.stopping()
        self.replica.leave()
        log.info("stopped")
        return EXIT_OK

    def _takeover(self) -> dt.timedelta:
        return parse_every(self.settings.daemon.takeover)

    def once(self) -> CycleReport:
        """One cycle, as the leader: under the file lock on SQLite, the leader lock on PostgreSQL."""
        if self.engine.dialect.name != "postgresql":
            with InstanceLock(lock_path(self.store_url)):
                self._upgrade_store()
                self.replica.role = "leader"
                with beating(self.replica):  # its heartbeat holds its claims while it sends
                    return self.cycle()
        leadership = Leadership(self.engine, self._takeover())
        if not leadership.try_lead():
            raise AlreadyRunning(
                f"another paperdigest leads this store ({leadership.holder()}); not running a second cycle"
            )
        try:
            self._upgrade_store()
            self.replica.role = "leader"
            with beating(self.replica):  # its heartbeat holds its claims while it sends
                return self.cycle()
        finally:
            leadership.release()

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stop_signalled = True  # no locks in here: see __init__

        def reload(signum: int, frame: FrameType | None) -> None:
            self.reload_signalled = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)


def _day_text(day: Day) -> str:
    """'2023-05-16: 21 papers', '2023-05-13: none', '2023-05-15: unchanged' (a 304)."""
    held = "unchanged" if day.items is None else "none" if day.items == 0 else _count(day.items, "paper")
    return f"{day.day}: {held}"


def _count(number: int, noun: str) -> str:
    """'1 new dump', '2 new dumps'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
