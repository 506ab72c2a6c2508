"""Ingest: a listing diffed against the store (diff.py, pure) and applied in one transaction
(write.py); job.py runs it for the commands and the daemon: sources -> parse -> diff -> store."""

from paperdigest.ingest.diff import Change, Diff, diff
from paperdigest.ingest.write import apply, reject

__all__ = ["Change", "Diff", "apply", "diff", "reject"]
