"""Signed links: a token names a subscriber (or one of its digests) and cannot be forged or turned
into another's. Tokens do not expire (a link in a mail from last year still unsubscribes), and
each purpose has its own salt, so a feed token is no unsubscribe token.

The secret: [web] secret_file, else $PAPERDIGEST_WEB_SECRET, else made in the state directory
on first use (readable by the owner only), so the daemon and the web side share it.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer

from paperdigest.config import Settings
from paperdigest.errors import ConfigError
from paperdigest.paths import private_dir, state_dir

SECRET_FILE = "web-secret"
_PURPOSES = ("unsubscribe", "digest", "feed", "subscriber")


def load_secret(settings: Settings) -> str:
    web = settings.web
    if web is not None and web.secret_file is not None:
        try:
            secret = web.secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"web.secret_file: cannot read {web.secret_file}: {exc.strerror}") from None
        if len(secret) < 16:
            raise ConfigError(f"web.secret_file: {web.secret_file} holds less than 16 characters")
        return secret
    from_env = os.environ.get("PAPERDIGEST_WEB_SECRET", "").strip()
    if from_env:
        return from_env
    return _made_secret(state_dir())


def _made_secret(folder: Path) -> str:
    """The secret in the state directory, made (0600) the first time."""
    path = folder / SECRET_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    private_dir(folder)
    made = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by the other process
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(made + "\n")
    return made


class Tokens:
    def __init__(self, secret: str) -> None:
        self._signers = {purpose: URLSafeSerializer(secret, salt=f"paperdigest.{purpose}") for purpose in _PURPOSES}

    def make(self, purpose: str, email: str) -> str:
        return str(self._signers[purpose].dumps(email.lower()))

    def read(self, purpose: str, token: str) -> str | None:
        """The address a token names, or None for a token that is not ours (altered, another kind)."""
        try:
            value = self._signers[purpose].loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def digest(self, email: str, period: dt.datetime) -> str:
        return str(self._signers["digest"].dumps([email.lower(), period.astimezone(dt.UTC).isoformat()]))

    def read_digest(self, token: str) -> tuple[str, dt.datetime] | None:
        try:
            value = self._signers["digest"].loads(token)
            email, period = value
            return str(email), dt.datetime.fromisoformat(str(period))
        except (BadSignature, ValueError, TypeError):
            return None
