"""Settings for a command: the config (or the embedded default) and the store URL."""

from __future__ import annotations

import argparse

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from paperdigest import config
from paperdigest.store.engine import Schema, open_engine, resolve_url


def load(args: argparse.Namespace) -> config.Settings:
    """--config, else $PAPERDIGEST_CONFIG, else the embedded default."""
    return config.resolve(args.config)


def store_url(args: argparse.Namespace, settings: config.Settings | None = None) -> str:
    """--db, else $PAPERDIGEST_DB, else the config's [store] url, else the embedded default."""
    settings = settings if settings is not None else load(args)
    return resolve_url(args.db, settings.store.url)


def engine(args: argparse.Namespace, settings: config.Settings | None = None, schema: Schema = "check") -> Engine:
    return open_engine(store_url(args, settings), schema)


def display_url(url: str) -> str:
    """The URL with any password hidden, for printing and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<invalid URL>"
