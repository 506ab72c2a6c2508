"""The TOML config, validated into frozen settings. Errors name the key path and the reason.

Sources of settings, strongest first: command-line flags, the environment
(PAPERDIGEST_DB, PAPERDIGEST_CONFIG, PAPERDIGEST_SMTP_PASSWORD), the config file, and the
embedded default (no config at all: SQLite under the state directory, seeds/ as a
read-only source, one demo subscriber of every topic, mail written as .eml files).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from paperdigest.errors import ConfigError
from paperdigest.schedule import cron_trigger, parse_every
from paperdigest.store.engine import state_dir

_EMAIL = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$"  # ASCII only: plain SMTP, no SMTPUTF8


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Model):
    url: str | None = None


class SourceSettings(_Model):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    kind: Literal["directory", "url"]
    path: Path | None = None
    url: str | None = None
    every: str | None = None
    cron: str | None = None
    move: bool = True
    stale_after: str | None = None  # default: 2d for url sources, never for directories

    @field_validator("every", "stale_after")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None:
            parse_every(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            cron_trigger(value)
        return value

    @model_validator(mode="after")
    def _where(self) -> SourceSettings:
        if self.kind == "directory" and self.path is None:
            raise ValueError("a directory source needs 'path'")
        if self.kind == "url" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("a url source needs 'url' starting with http:// or https://")
        if self.every and self.cron:
            raise ValueError("give 'every' or 'cron', not both")
        return self


class ScoringSettings(_Model):
    upvotes: Annotated[float, Field(ge=0)] = 1.0
    title: Annotated[float, Field(ge=0)] = 3.0
    abstract: Annotated[float, Field(ge=0)] = 1.0


class TopicSettings(_Model):
    keywords: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    exclude: list[Annotated[str, Field(min_length=1)]] = []


class MailSettings(_Model):
    from_: Annotated[str, Field(alias="from", min_length=3)] = "Paper Digest <paperdigest@localhost>"
    transport: Literal["smtp", "file"] = "file"
    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_file: Path | None = None
    outbox_dir: Path | None = None
    ca_file: Path | None = None
    timeout: Annotated[float, Field(gt=0)] = 30.0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DigestSettings(_Model):
    send_empty: bool = False
    templates: Path | None = None
    rising_factor: Annotated[float, Field(ge=1)] = 2.0
    rising_min_gain: Annotated[int, Field(ge=1)] = 10


class DaemonSettings(_Model):
    tick: str = "1m"  # how often the daemon looks for due digests and mail to retry
    misfire_grace: str = "10m"  # a job late by less than this still runs (once: jobs coalesce)

    @field_validator("tick", "misfire_grace")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_every(value)
        return value


class SubscriberSettings(_Model):
    email: Annotated[str, Field(pattern=_EMAIL)]
    name: str | None = None
    topics: list[str] = []
    format: Literal["html", "text", "both"] = "both"
    cron: str = "0 7 * * *"
    timezone: str = "UTC"
    max_papers: Annotated[int, Field(ge=1, le=500)] = 20
    min_score: float = 0.0

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        cron_trigger(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as 'Europe/Berlin')") from None
        return value


class Settings(_Model):
    store: StoreSettings = StoreSettings()
    sources: list[SourceSettings] = []
    scoring: ScoringSettings = ScoringSettings()
    topics: dict[str, TopicSettings] = {}
    mail: MailSettings = MailSettings()
    digest: DigestSettings = DigestSettings()
    daemon: DaemonSettings = DaemonSettings()
    subscribers: list[SubscriberSettings] = []
    origin: Annotated[str, Field(exclude=True)] = "embedded default"

    @model_validator(mode="after")
    def _references(self) -> Settings:
        for index, subscriber in enumerate(self.subscribers):
            for topic in subscriber.topics:
                if topic not in self.topics:
                    known = ", ".join(map(repr, sorted(self.topics))) or "none defined"
                    raise ValueError(f"subscribers[{index}].topics: unknown topic {topic!r} (known: {known})")
        emails = [s.email.lower() for s in self.subscribers]
        if len(set(emails)) != len(emails):
            raise ValueError("subscribers: an email address is listed twice")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("sources: a source name is used twice")
        return self

    def subscriber(self, email: str) -> SubscriberSettings:
        for subscriber in self.subscribers:
            if subscriber.email.lower() == email.lower():
                return subscriber
        raise ConfigError(f"unknown subscriber {email!r} (known: {', '.join(s.email for s in self.subscribers)})")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Quoted keys escape what would end the line: JSON's escapes (TOML's too) cover the C0 controls.
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def key_path(loc: tuple[int | str, ...]) -> str:
    """('subscribers', 2, 'cron') -> 'subscribers[2].cron'; a key that is not a bare TOML key is
    quoted as in TOML (topics."a.b", ""), so that the path is one line and says which key."""
    path = ""
    for position, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-") or (position == len(loc) - 1 and part in {"literal", "str", "int", "float"}):
            continue  # pydantic's names for a validator or a union member, not the user's keys
        else:
            key = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False).translate(_LINE_BREAKS)
            path += f".{key}" if path else key
    return path


def _message(error: ErrorDetails) -> str:
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return message


def validate(data: dict[str, Any], origin: str) -> Settings:
    if "origin" in data:
        raise ConfigError(f"{origin}: origin: unknown key")
    try:
        return Settings.model_validate({**data, "origin": origin})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = key_path(tuple(first["loc"]))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        prefix = f"{where}: " if where and not _message(first).startswith(where) else ""
        raise ConfigError(f"{origin}: {prefix}{_message(first)}{more}") from None


def load(path: Path) -> Settings:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save the config as UTF-8") from None
    except RecursionError:  # tomllib reads nested arrays and tables by recursion
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    except ValueError as exc:  # tomllib converts integers of any length: past 4,300 digits int() refuses
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return validate(data, str(path))


DEFAULT_TOPICS: dict[str, dict[str, list[str]]] = {
    "agents": {"keywords": ["agent", "web agent", "GUI", "computer use", "tool use"], "exclude": []},
    "robotics": {"keywords": ["robot", "manipulation", "embodied", "navigation", "vision-language-action"]},
    "reasoning": {"keywords": ["reasoning", "chain-of-thought", "reinforcement learning", "math"]},
    "generalization": {"keywords": ["generalist", "generalization", "foundation model", "multi-task"]},
}


def embedded_default(env: dict[str, str] | None = None) -> Settings:
    """The settings used when no config file is given."""
    state = state_dir(env)
    data: dict[str, Any] = {
        "sources": [
            {"name": "seeds", "kind": "directory", "path": str(default_seeds_dir()), "move": False, "every": "1h"}
        ],
        "topics": DEFAULT_TOPICS,
        "mail": {"transport": "file", "outbox_dir": str(state / "outbox")},
        "subscribers": [{"email": "demo@localhost", "name": "Demo Reader", "topics": list(DEFAULT_TOPICS)}],
    }
    return validate(data, "embedded default")


def default_seeds_dir() -> Path:
    """The seeds shipped inside the package (paperdigest/seeds), else the checkout's seeds/."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "seeds", package.parent / "seeds", Path.cwd() / "seeds"):
        if candidate.is_dir():
            return candidate
    return package / "seeds"


def resolve(config_flag: str | None) -> Settings:
    """--config, else $PAPERDIGEST_CONFIG, else the embedded default."""
    raw = config_flag or os.environ.get("PAPERDIGEST_CONFIG")
    return load(Path(raw)) if raw else embedded_default()


def smtp_password(mail: MailSettings) -> str | None:
    """$PAPERDIGEST_SMTP_PASSWORD, else the password file (systemd credentials). Never logged."""
    from_env = os.environ.get("PAPERDIGEST_SMTP_PASSWORD")
    if from_env:
        return from_env
    if mail.password_file is None:
        return None
    try:
        return mail.password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"mail.password_file: cannot read {mail.password_file}: {exc.strerror}") from None
