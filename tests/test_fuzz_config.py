"""Fuzzing the config loader (issue 9, point 10).

Generated documents, with valid and invalid keys and values of every TOML type at every level, give
Settings, or a ConfigError on one line that names the file and the key path of what is wrong (a path
that is in the document, or one of its missing keys); never another exception (pydantic internals,
TypeError, RecursionError, OverflowError from a validator), never a hang. The same holds for the
documents written out as TOML and loaded from a file, whole or mutated.

Volume: see tests/fuzzing.py (PAPERDIGEST_FUZZ=long for the long run).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from paperdigest import config
from paperdigest.errors import ConfigError
from tests.fuzzing import fuzz_settings, mutations, watchdog

pytestmark = pytest.mark.fuzz

ORIGIN = "c.toml"

# --- values: what each key takes, and what it could be given instead --------------------------------

_TOML_LEAF = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.times(),
)
ANY_VALUE = st.recursive(
    _TOML_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

DURATIONS = st.one_of(
    st.sampled_from(["15m", "1h", "30s", "2d", "0s", " 5 m ", "\u0663m", "1w", "", "99999999999999d", "9" * 30 + "s"]),
    st.from_regex(r"\s?[0-9]{1,22}\s?[smhdx]?", fullmatch=True),
)
_CRON_FIELD = st.one_of(
    st.sampled_from(
        [
            *("*", "*/15", "0", "7", "1-5", "mon-fri", "MON", "sun", "L", "last", "?", "5#3", "1,2,3", "*/0", "-1"),
            *("jan", "feb-dec", "0-59/5", "xyz", "last fri", "*/", "1-", ",", "7-0", "99999999999999999999", "6#9"),
            *("32", "0/0"),
        ]
    ),
    st.from_regex(r"[0-9*/,\-a-z#?]{1,6}", fullmatch=True),
)
CRONS = st.one_of(
    st.lists(_CRON_FIELD, min_size=5, max_size=5).map(" ".join),
    st.lists(_CRON_FIELD, min_size=0, max_size=7).map(" ".join),
    st.sampled_from(["0 7 * * *", "*/15 * * * *", "0 0 31 2 *", "0 7 * * 1-5", "0 7 * *\u00a0*"]),
)
TIMEZONES = st.one_of(
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Etc/GMT+12", "Asia/Kolkata", "Factory"]),
    st.sampled_from(["", "Mars/Olympus", "x" * 300, "../../../etc/passwd", "UTC\x00", "/", ".", "Europe/"]),
    st.sampled_from(["zone.tab", "tzdata.zi", "posixrules", "right/UTC", "posix/UTC", "Europe/../UTC", "utc"]),
    st.text(max_size=20),
)
EMAILS = st.one_of(
    st.from_regex(r"[a-z0-9.+]{1,8}@[a-z0-9.-]{1,8}", fullmatch=True),
    st.sampled_from(["ada@example.org", "ADA@example.org", "not-an-address", "a@", "@b", "é@x.org", "a b@x"]),
)
_WORD = st.text(min_size=1, max_size=10)
FLOATS = st.floats() | st.integers(-(10**30), 10**30) | st.sampled_from([0.0, -1.0, 1e308, 0.5])
INTS = st.integers(-5, 600) | st.integers() | st.integers(-(2**100), 2**100)

TABLE_KEYS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "store": {"url": st.sampled_from(["sqlite:///x.db", "postgresql+psycopg://u@h/db"]) | _WORD},
    "scoring": {"upvotes": FLOATS, "title": FLOATS, "abstract": FLOATS},
    "mail": {
        "from": st.sampled_from(["Paper Digest <d@example.org>", "d@x", ""]) | _WORD,
        "transport": st.sampled_from(["smtp", "file", "pigeon"]),
        "host": _WORD,
        "port": INTS,
        "security": st.sampled_from(["starttls", "ssl", "none", "tls"]),
        "username": _WORD,
        "password_file": _WORD,
        "outbox_dir": _WORD,
        "ca_file": _WORD,
        "timeout": FLOATS,
    },
    "digest": {"send_empty": st.booleans(), "templates": _WORD, "rising_factor": FLOATS, "rising_min_gain": INTS},
    "daemon": {"tick": DURATIONS, "misfire_grace": DURATIONS},
}
SOURCE_KEYS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["inbox", "hf-daily", "a.b_c", "has space", ""]) | _WORD,
    "kind": st.sampled_from(["directory", "url", "huggingface", "ftp"]),
    "path": st.sampled_from(["/var/lib/paperdigest/inbox", "", "\x00"]) | _WORD,
    "url": st.sampled_from(["https://huggingface.co/api/daily_papers", "http://127.0.0.1:9/x", "ftp://x"]) | _WORD,
    "every": DURATIONS,
    "cron": CRONS,
    "move": st.booleans(),
    "stale_after": DURATIONS,
}
SUBSCRIBER_KEYS: dict[str, st.SearchStrategy[Any]] = {
    "email": EMAILS,
    "name": _WORD,
    "topics": st.lists(st.sampled_from(["agents", "robotics", "nope"]) | _WORD, max_size=3),
    "format": st.sampled_from(["html", "text", "both", "pdf"]),
    "cron": CRONS,
    "timezone": TIMEZONES,
    "max_papers": INTS,
    "min_score": FLOATS,
}
_TOPIC_NAME = st.sampled_from(["agents", "robotics", "a.b", "", "x y", "with\nnewline"]) | _WORD
_KEYWORDS = st.lists(st.sampled_from(["agent", "GUI", "", "computer use"]) | _WORD, max_size=4)


@st.composite
def tables(draw: st.DrawFn, keys: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """Some of `keys` with a value they take (mostly) or any value; sometimes an unknown key."""
    table: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(sorted(keys)), unique=True, max_size=len(keys))):
        table[key] = draw(ANY_VALUE) if draw(st.integers(0, 7)) == 0 else draw(keys[key])
    if draw(st.integers(0, 9)) == 0:
        table[draw(_WORD | st.just(""))] = draw(ANY_VALUE)
    return table


def _or_anything(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    return draw(ANY_VALUE) if draw(st.integers(0, 11)) == 0 else draw(strategy)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(sorted(TABLE_KEYS)), unique=True)):
        document[section] = _or_anything(draw, tables(TABLE_KEYS[section]))
    if draw(st.booleans()):
        document["sources"] = _or_anything(draw, st.lists(tables(SOURCE_KEYS), max_size=3))
    if draw(st.booleans()):
        topic = st.fixed_dictionaries({"keywords": _KEYWORDS}, optional={"exclude": _KEYWORDS, "colour": _WORD})
        document["topics"] = _or_anything(draw, st.dictionaries(_TOPIC_NAME, topic, max_size=3))
    if draw(st.booleans()):
        document["subscribers"] = _or_anything(draw, st.lists(tables(SUBSCRIBER_KEYS), max_size=3))
    if draw(st.integers(0, 9)) == 0:
        document[draw(st.sampled_from(["origin", "bogus", "Store", ""]) | _WORD)] = draw(ANY_VALUE)
    return document


# --- writing a document as TOML --------------------------------------------------------------------


def toml_string(text: str) -> str:
    # JSON's escapes are TOML's; DEL is a control character TOML wants escaped and JSON does not.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_string(key)} = {toml_value(item)}" for key, item in value.items()) + "}"


def toml_document(document: dict[str, Any]) -> str:
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in document.items())


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    return type(a) is type(b) and a == b


# --- the property ------------------------------------------------------------------------------------


def _field_names(model: type[BaseModel]) -> Iterator[str]:
    for name, field in model.model_fields.items():
        yield field.alias or name


CONFIG_MODELS = [
    config.Settings,
    config.StoreSettings,
    config.SourceSettings,
    config.ScoringSettings,
    config.TopicSettings,
    config.MailSettings,
    config.DigestSettings,
    config.DaemonSettings,
    config.SubscriberSettings,
]
FIELDS = {name for model in CONFIG_MODELS for name in _field_names(model)}


Loc = tuple[int | str, ...]


def locations(value: Any, prefix: Loc = ()) -> Iterator[Loc]:
    """Where each key and item of a document is."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from locations(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from locations(item, (*prefix, index))


def check_config_error(error: ConfigError, origin: str, document: dict[str, Any] | None) -> None:
    message = str(error)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{origin}: "), message
    if document is None:
        return
    rest = message.removeprefix(f"{origin}: ")
    present = set(locations(document))
    missing = {(*loc, field) for loc in present | {()} for field in FIELDS}
    paths = {config.key_path(loc) for loc in present | missing}
    assert any(rest.startswith(f"{path}: ") for path in paths), f"names no key path: {message}"


def load_or_refuse(
    load: Callable[[], config.Settings], origin: str, document: dict[str, Any] | None
) -> config.Settings | None:
    with watchdog():
        try:
            return load()
        except ConfigError as error:
            check_config_error(error, origin, document)
            return None


@fuzz_settings(250)
@given(document=documents())
def test_generated_documents_validate_or_name_a_key_path(document: dict[str, Any]) -> None:
    load_or_refuse(lambda: config.validate(document, ORIGIN), ORIGIN, document)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / ORIGIN


def load_bytes(path: Path, data: bytes) -> config.Settings:
    path.write_bytes(data)
    settings = config.load(path)
    return settings


@fuzz_settings(100)
@given(document=documents())
def test_generated_documents_load_from_toml_as_they_validate(config_file: Path, document: dict[str, Any]) -> None:
    text = toml_document(document)
    assert same(tomllib.loads(text), document)  # the writer above is faithful
    path_error = None
    try:
        from_file: config.Settings | None = load_bytes(config_file, text.encode())
    except ConfigError as error:
        from_file, path_error = None, str(error).removeprefix(f"{config_file}: ")
    try:
        validated: config.Settings | None = config.validate(document, str(config_file))
    except ConfigError as error:
        assert path_error == str(error).removeprefix(f"{config_file}: ")
        validated = None
    assert (from_file is None) == (validated is None)


@fuzz_settings(150)
@given(document=documents(), edits=st.data())
def test_mutated_toml_files_load_or_are_refused(
    config_file: Path, document: dict[str, Any], edits: st.DataObject
) -> None:
    data = edits.draw(mutations(toml_document(document).encode()))
    load_or_refuse(lambda: load_bytes(config_file, data), str(config_file), None)


# TOML that only a hand (or a program gone wrong) writes.
HOSTILE_TOML = {
    "deeply nested arrays": "a = " + "[" * 5000 + "]" * 5000,
    "deeply nested inline tables": "a = " + "{b = " * 5000 + "1" + "}" * 5000,
    "deeply nested tables": "[" + ".".join(["a"] * 5000) + "]",
    "an integer of 5,000 digits": "[mail]\nport = " + "9" * 5000,
    "a negative one": "[mail]\nport = -" + "9" * 5000,
    "a hex integer of 5,000 digits": "[mail]\nport = 0x" + "f" * 5000,
    "a duration past the calendar": '[daemon]\ntick = "99999999999999d"',
    "a source polled every 10^20 days": '[[sources]]\nname = "a"\nkind = "url"\nurl = "http://x"\nevery = "'
    + "9" * 20
    + 'd"',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_TOML))
def test_hostile_toml_is_refused_as_a_config_error(config_file: Path, name: str) -> None:
    """Each of these raised RecursionError, ValueError or OverflowError out of the loader."""
    with pytest.raises(ConfigError) as caught:
        load_bytes(config_file, HOSTILE_TOML[name].encode())
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(config_file))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"": 1}, 'c.toml: "": unknown key'),  # was "c.toml: unknown key": no path at all
        ({"topics": {"with\nnewline": {"keywords": [1]}}}, 'c.toml: topics."with\\nnewline".keywords[0]: '),
        ({"topics": {"a.b": {"keywords": ["x"], "colour": 1}}}, 'c.toml: topics."a.b".colour: unknown key'),
        ({"topics": {"int": {"keywords": [1]}}}, "c.toml: topics.int.keywords[0]: "),  # "int" was dropped
        ({"topics": {"\u2028": {}}}, 'c.toml: topics."\\u2028".keywords: '),
        (
            {"topics": {"a\nb": {"keywords": ["x"]}}, "subscribers": [{"email": "a@x.org", "topics": ["c"]}]},
            "c.toml: subscribers[0].topics: unknown topic 'c' (known: 'a\\nb')",
        ),
    ],
)
def test_key_paths_with_odd_keys_are_one_line_and_quoted(document: dict[str, Any], message: str) -> None:
    """A key that is empty or holds a dot or a line break used to print as is: no path, or two lines."""
    with pytest.raises(ConfigError) as caught:
        config.validate(document, ORIGIN)
    assert str(caught.value).startswith(message)
    assert len(str(caught.value).splitlines()) == 1
