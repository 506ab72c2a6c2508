"""The one exception tree. The CLI catches `PaperdigestError` once and maps it to an exit code.

Exit codes (DESIGN.md): 2 for bad input or usage, 1 for a runtime failure.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2


class PaperdigestError(Exception):
    """Root of every error this program raises on purpose."""

    exit_code = EXIT_RUNTIME


class BadInputError(PaperdigestError):
    """Input the user can fix: a dump, a config, a command line."""

    exit_code = EXIT_BAD_INPUT


class UsageError(BadInputError, ValueError):
    """A command line that cannot be carried out as given."""


class ParseError(BadInputError, ValueError):
    """A dump that is not a listing we can read. Names the file and the line."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, int | None, str]]:
        # Rebuilt from its parts (args holds only the message): it crosses from the parsing worker.
        return (type(self), (self.source, self.line, self.reason))


class EmptyListingError(ParseError):
    """A well-formed listing with zero entries: a warning for a source, an error for `ingest`."""


class ConfigError(BadInputError):
    """A config file that is refused, with the key path and the reason."""


class SourceError(PaperdigestError, OSError):
    """A source that could not be read or fetched."""


class StoreError(PaperdigestError):
    """The database failed or holds something unexpected."""


class MailError(PaperdigestError):
    """Mail could not be built or delivered."""
