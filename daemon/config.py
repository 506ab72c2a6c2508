"""The TOML config, validated into frozen settings. Errors name the key path and the reason.

Sources of settings, strongest first: command-line flags, the environment
(PAPERDIGEST_DB, PAPERDIGEST_CONFIG, PAPERDIGEST_SMTP_PASSWORD), the config file, and the
embedded default (no config at all: SQLite under the state directory, seeds/ as a
read-only source, one demo subscriber of every topic, mail written as .eml files).
"""

# No `from __future__ import annotations` here, unlike the other modules: pydantic would have to
# compile and evaluate every field's annotation from its text (~60 of them, ~8 M instructions of
# every command's start-up, issue 13); written as objects, they are read as they are. The three
# validators that return their own class name it in quotes.

import datetime as dt
import json
import os
import re
import tomllib
import urllib.parse
from email.utils import getaddresses
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from paperdigest.errors import ConfigError
from paperdigest.folding import folded
from paperdigest.paths import state_dir
from paperdigest.service.schedule import cron_trigger, parse_every

_EMAIL = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$"  # ASCII only: plain SMTP, no SMTPUTF8


class _Model(BaseModel):
    # Strict: TOML has real types, so "20" for a number or "yes" for a boolean is a mistake to
    # name now, not a value to coerce (a file path is the one string turned into another type).
    # TOML also has nan and inf: no weight, limit or min_score means either (a min_score of nan
    # would empty every digest without a word), so they are refused.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


FilePath = Annotated[Path, Field(strict=False)]


class StoreSettings(_Model):
    url: str | None = None


HUGGINGFACE_URL = "https://huggingface.co/api/daily_papers"
DAILY_PAPERS_PATH = "/api/daily_papers"
_HOUR_MINUTE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_HOLIDAY = re.compile(r"^(\d{4}-)?\d{2}-\d{2}$")
_HUGGINGFACE_ONLY = ("empty_after", "holidays", "page_size")


class SourceSettings(_Model):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    kind: Literal["directory", "url", "huggingface"]
    path: FilePath | None = None
    url: str | None = None  # huggingface: the API (default HUGGINGFACE_URL); a site's root will do
    every: str | None = None
    cron: str | None = None
    move: bool = True
    stale_after: str | None = None  # default: 2d for url sources, 4d for huggingface, never for directories
    # huggingface only: a weekday whose listing is still empty at this time (UTC) is a warning in
    # `status` (default 14:00); days that are empty as weekends are ("MM-DD" every year, or a
    # "YYYY-MM-DD"); items per request (the API's `limit`).
    empty_after: str | None = None
    holidays: list[str] | None = None
    page_size: Annotated[int, Field(ge=1, le=100)] | None = None

    @field_validator("empty_after")
    @classmethod
    def _hour_minute(cls, value: str | None) -> str | None:
        if value is not None and not _HOUR_MINUTE.match(value):
            raise ValueError(f"expected a time of day as HH:MM (UTC), got {value!r}")
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: list[str] | None) -> list[str] | None:
        for day in value or []:
            try:
                if not _HOLIDAY.match(day):
                    raise ValueError
                dt.date.fromisoformat(day if len(day) == 10 else f"2000-{day}")  # 2000: Feb 29 exists
            except ValueError:
                raise ValueError(f"expected days as MM-DD (every year) or YYYY-MM-DD, got {day!r}") from None
        return value

    @property
    def api_url(self) -> str:
        """The daily-papers API of a huggingface source: `url`, its path added when it names only a site."""
        if not self.url:
            return HUGGINGFACE_URL
        parts = urllib.parse.urlsplit(self.url)
        if parts.path in ("", "/"):
            return urllib.parse.urlunsplit(parts._replace(path=DAILY_PAPERS_PATH))
        return self.url

    @property
    def empty_after_time(self) -> dt.time:
        hour, minute = (self.empty_after or "14:00").split(":")
        return dt.time(int(hour), int(minute), tzinfo=dt.UTC)

    def is_holiday(self, day: dt.date) -> bool:
        return any(h in (day.isoformat(), day.isoformat()[5:]) for h in self.holidays or [])

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
    def _where(self) -> "SourceSettings":
        if self.kind == "directory" and self.path is None:
            raise ValueError("a directory source needs 'path'")
        if self.kind == "url" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("a url source needs 'url' starting with http:// or https://")
        if self.kind == "huggingface" and self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"a huggingface source's 'url' must start with http:// or https:// ({HUGGINGFACE_URL})")
        if self.kind != "huggingface":
            given = [key for key in _HUGGINGFACE_ONLY if getattr(self, key) is not None]
            if given:
                raise ValueError(f"'{given[0]}' is only for huggingface sources")
        if self.every and self.cron:
            raise ValueError("give 'every' or 'cron', not both")
        return self


class ScoringSettings(_Model):
    upvotes: Annotated[float, Field(ge=0)] = 1.0
    title: Annotated[float, Field(ge=0)] = 3.0
    abstract: Annotated[float, Field(ge=0)] = 1.0
    ai_keywords: Annotated[float, Field(ge=0)] | None = None  # default: the abstract's weight

    @property
    def ai_keywords_weight(self) -> float:
        """A hit among the paper's AI keywords weighs this (unset: like a hit in the abstract)."""
        return self.abstract if self.ai_keywords is None else self.ai_keywords


class TopicSettings(_Model):
    keywords: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    exclude: list[Annotated[str, Field(min_length=1)]] = []

    @field_validator("keywords", "exclude")
    @classmethod
    def _matchable(cls, value: list[str]) -> list[str]:
        """Keywords match as folded words (score.py): one with no word never matches, and two that
        fold alike would count the same hit twice ("agent" and "Agents": 6 points for one word)."""
        seen: dict[str, str] = {}
        for keyword in value:
            key = folded(keyword).strip()
            if not key:
                raise ValueError(f"{keyword!r} has no word to match (keywords match whole words)")
            if key in seen:
                raise ValueError(
                    f"{keyword!r} repeats {seen[key]!r} (keywords match case-insensitively, plurals folded)"
                )
            seen[key] = keyword
        return value


class MailSettings(_Model):
    from_: Annotated[str, Field(alias="from", min_length=3)] = "Paper Digest <paperdigest@localhost>"
    transport: Literal["smtp", "file"] = "file"
    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_file: FilePath | None = None
    outbox_dir: FilePath | None = None
    ca_file: FilePath | None = None
    timeout: Annotated[float, Field(gt=0)] = 30.0

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str) -> str:
        pairs = getaddresses([value])
        if len(pairs) != 1 or not re.fullmatch(_EMAIL, pairs[0][1]) or any(ch in value for ch in "\r\n"):
            raise ValueError(f"expected one mail address such as 'Paper Digest <digest@example.org>', got {value!r}")
        return value

    @field_validator("ca_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            _check_readable(value)
        return value

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> "MailSettings":
        # AUTH over a connection without TLS sends the password as base64 text: refused unless the
        # server is on this host (a local relay), as Postfix's client refuses plaintext SASL by default.
        if self.transport == "smtp" and self.username and self.security == "none" and not _loopback(self.host):
            raise ValueError(
                f'security = "none" with a username would send the SMTP password unencrypted to {self.host}: '
                'use "starttls" or "ssl" (a relay on this host, localhost or 127.0.0.1, may use "none")'
            )
        return self


def _loopback(host: str) -> bool:
    """localhost or a loopback address (127.0.0.0/8, ::1)."""
    import ipaddress  # noqa: PLC0415  lazy: only a config with SMTP authentication without TLS asks

    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DigestSettings(_Model):
    send_empty: bool = False
    templates: FilePath | None = None
    rising_factor: Annotated[float, Field(ge=1)] = 2.0
    rising_min_gain: Annotated[int, Field(ge=1)] = 10

    @field_validator("templates")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{_shown(value)} is not a directory")
        return value


class DaemonSettings(_Model):
    tick: str = "1m"  # how often the daemon looks for due digests and mail to retry
    misfire_grace: str = "10m"  # a job late by less than this still runs (once: jobs coalesce)
    takeover: str = "30s"  # PostgreSQL: a standby leads within this of the leader's death

    @field_validator("tick", "misfire_grace", "takeover")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_every(value)
        return value


MAX_DUMP_BYTES = 20 * 1024 * 1024


class LimitsSettings(_Model):
    """Caps on what one dump may cost, for every source and command alike."""

    max_dump_bytes: Annotated[int, Field(gt=0, strict=True)] = MAX_DUMP_BYTES  # a file or an HTTP body
    fetch_deadline: Annotated[float, Field(gt=0, strict=True)] = 60.0  # s, one HTTP attempt, start to end
    fetch_budget: Annotated[float, Field(gt=0, strict=True)] | None = None  # s, a whole fetch, retries included

    @model_validator(mode="after")
    def _budget(self) -> "LimitsSettings":
        if self.fetch_budget is not None and self.fetch_budget < self.fetch_deadline:
            raise ValueError(
                f"limits.fetch_budget ({self.fetch_budget:g} s) must be at least "
                f"limits.fetch_deadline ({self.fetch_deadline:g} s): it covers every try of a fetch"
            )
        return self

    @property
    def budget(self) -> float:
        """Seconds for a whole fetch, waits between tries included: fetch_budget, else 3 tries' worth."""
        return self.fetch_budget if self.fetch_budget is not None else 3 * self.fetch_deadline


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
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as 'Europe/Berlin')") from None
        return value


class WebSettings(_Model):
    """The web side (`paperdigest web`): one-click unsubscribe, the archive, feeds."""

    base_url: str  # the public URL the mail links to, e.g. https://digest.example.org
    listen: str = "127.0.0.1:8080"
    secret_file: FilePath | None = None  # signs the links; or PAPERDIGEST_WEB_SECRET, else made in the state dir

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"expected an http(s) URL such as 'https://digest.example.org', got {value!r}")
        return value.rstrip("/")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT such as '127.0.0.1:8080', got {value!r}")
        return value


class Settings(_Model):
    store: StoreSettings = StoreSettings()
    sources: list[SourceSettings] = []
    scoring: ScoringSettings = ScoringSettings()
    topics: dict[str, TopicSettings] = {}
    mail: MailSettings = MailSettings()
    digest: DigestSettings = DigestSettings()
    daemon: DaemonSettings = DaemonSettings()
    limits: LimitsSettings = LimitsSettings()
    subscribers: list[SubscriberSettings] = []
    web: WebSettings | None = None
    origin: Annotated[str, Field(exclude=True)] = "embedded default"

    @model_validator(mode="after")
    def _references(self) -> "Settings":
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
    if error["type"] == "string_pattern_mismatch" and error["loc"] and error["loc"][-1] == "email":
        return f"not a mail address (name@domain): {error['input']!r}"
    return message


def validate(data: dict[str, Any], origin: str) -> Settings:
    if "origin" in data:
        raise ConfigError(f"{origin}: origin: unknown key")
    try:
        return Settings.model_validate({**data, "origin": origin})
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem, as 'key.path: reason' (and how many more there are)."""
    first = exc.errors()[0]
    where = key_path(tuple(first["loc"]))
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    prefix = f"{where}: " if where and not _message(first).startswith(where) else ""
    return f"{prefix}{_message(first)}{more}"


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


def _shown(path: Path) -> str:
    """A path for a one-line message: as it is, or quoted when it holds unprintable characters."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def _check_readable(path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read {_shown(path)}: {exc.strerror}") from None


def sending_problems(settings: Settings) -> list[str]:
    """What stops this config from sending mail, each naming its key: checked when `run` or
    `send` loads the config (refused, exit 2), and shown by `status`. The password file is
    checked here rather than for every command: a systemd credential exists only inside the
    service, and `papers` or `status` from a shell must still work."""
    mail = settings.mail
    if mail.transport != "smtp" or os.environ.get("PAPERDIGEST_SMTP_PASSWORD"):
        return []
    if mail.password_file is not None:
        try:
            _check_readable(mail.password_file)
        except ValueError as exc:
            return [f"mail.password_file: {exc}"]
    elif mail.username:
        return ["mail.username is set but there is no password (mail.password_file or PAPERDIGEST_SMTP_PASSWORD)"]
    return []


def check_can_send(settings: Settings) -> None:
    """Refuse a config that cannot send (ConfigError naming the file and the key)."""
    problems = sending_problems(settings)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{settings.origin}: {problems[0]}{more}")


def _world_readable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False


def exposure_warnings(settings: Settings) -> list[str]:
    """Secrets that other users of the machine can read: a config file holding one (a store URL
    with a password) or the SMTP password file, when they are world-readable."""
    warnings = []
    origin = Path(settings.origin)
    url = settings.store.url or ""
    holds_secret = bool(re.match(r"^[^:/]+://[^/@]*:[^/@]*@", url))
    if holds_secret and settings.origin != "embedded default" and _world_readable(origin):
        warnings.append(f"{origin} holds a secret (the store URL's password) and is world-readable: chmod o-r it")
    password = settings.mail.password_file
    if password is not None and _world_readable(password):
        warnings.append(f"mail.password_file {password} is world-readable: chmod o-r it")
    return warnings


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
