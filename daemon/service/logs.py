"""Logs go to stderr, one line per event; under journald (JOURNAL_STREAM) without timestamps,
with a syslog priority prefix such as <4> that journald reads as the level."""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(super().format(record).splitlines())
        return f"<{_PRIORITY.get(record.levelno, 6)}>{message}"


class LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(super().format(record).splitlines())


def setup_logging(verbose: bool, daemon: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(LineFormatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO if daemon else logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING if not verbose else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations report through paperdigest
