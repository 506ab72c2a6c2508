"""The digest stage: what a subscriber gets (selection.py: the window, the ranking, Rising),
how it reads (render.py: Jinja2, HTML and text), and the job that queues each due digest in
the outbox (job.py)."""

from paperdigest.digest.selection import (
    RISING_LIMIT,
    Digest,
    Rising,
    Section,
    Window,
    build,
    empty_preview_hint,
    is_rising,
    period_window,
    select,
)

__all__ = [
    "RISING_LIMIT",
    "Digest",
    "Rising",
    "Section",
    "Window",
    "build",
    "empty_preview_hint",
    "is_rising",
    "period_window",
    "select",
]
