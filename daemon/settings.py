"""Where the store is: --db, else $PAPERDIGEST_DB, else the config's [store] url, else the default."""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from daemon.errors import ConfigError
from daemon.store.engine import resolve_url


def config_path(args: argparse.Namespace) -> Path | None:
    raw = args.config or os.environ.get("PAPERDIGEST_CONFIG")
    return Path(raw) if raw else None


def _config_store_url(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    store = data.get("store", {})
    if not isinstance(store, dict):
        raise ConfigError(f"{path}: store: expected a table")
    url = store.get("url")
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"{path}: store.url: expected a string")
    return url


def store_url(args: argparse.Namespace) -> str:
    return resolve_url(args.db, _config_store_url(config_path(args)))


def display_url(url: str) -> str:
    """The URL with any password hidden, for printing and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"
