"""Signal handlers must take no lock: they run in the main thread between any two bytecodes."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from paperdigest import config
from paperdigest.service.scheduler import Service


@pytest.fixture
def service(tmp_path: Path, db_url: str) -> Iterator[Service]:
    path = tmp_path / "c.toml"
    path.write_text('[[subscribers]]\nemail = "a@example.org"\n', encoding="utf-8")
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    service = Service(config.load(path), db_url, str(path))
    service._install_signals()
    yield service
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    service.engine.dispose()


def raise_while_holding(lock: threading.Condition, sig: int) -> bool:
    """Deliver `sig` while the main thread holds `lock`; True if a rescuer had to free the lock."""
    rescued = threading.Event()

    def rescue() -> None:
        rescued.set()
        lock.release()  # a plain Lock may be released by another thread: this ends a deadlock

    timer = threading.Timer(5, rescue)
    lock.acquire()
    timer.start()
    try:
        signal.raise_signal(sig)
    finally:
        timer.cancel()
        timer.join()
        if not rescued.is_set():
            lock.release()
    return rescued.is_set()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_inside_event_wait_does_not_deadlock(service: Service, sig: int) -> None:
    # Event.wait holds this condition's lock for a few bytecodes around each wake-up; a handler
    # that calls Event.set() at that moment waits for a lock its own thread holds, forever.
    assert not raise_while_holding(service.stopping._cond, sig), "the handler blocked on the held lock"
    assert service.stop_signalled


def test_sighup_inside_event_wait_does_not_deadlock(service: Service) -> None:
    assert not raise_while_holding(service.stopping._cond, signal.SIGHUP), "the handler blocked on the held lock"
    assert service.reload_signalled and not service.stop_signalled


def test_a_send_tick_after_the_stop_builds_nothing(service: Service) -> None:
    """A send tick that was already due when SIGTERM came does not build the next digests: the
    daemon is stopping, and only the job in flight is finished."""
    from sqlalchemy import text  # noqa: PLC0415

    service.stopping.set()
    service.send()
    with service.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM outbox")).scalar_one() == 0
    service.stopping.clear()
    service.send()  # the same tick, not stopping: the demo period's digest is decided and held
    with service.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM outbox")).scalar_one() == 1
