"""A store as release 0.1.0 left it: its schema (checked in as SQL, per engine) and the rows a
real 0.1.0 run made (the seeds ingested, one digest sent to demo@localhost on 2026-11-23)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import warnings
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, LargeBinary, MetaData, create_engine
from sqlalchemy.pool import NullPool

from tests.conftest import FIXTURES

V010 = FIXTURES / "v0.1.0"
TABLE_ORDER = ("dump", "outbox", "source_state", "paper", "outbox_message", "sighting", "sent_paper")


def rows() -> dict[str, list[dict[str, Any]]]:
    loaded: dict[str, list[dict[str, Any]]] = json.loads((V010 / "rows.json").read_text(encoding="utf-8"))
    return loaded


def _value(column: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, LargeBinary):
        return base64.b64decode(value["base64"])
    if isinstance(column.type, DateTime):
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    if isinstance(column.type, Date):
        return dt.date.fromisoformat(value)
    if isinstance(column.type, Boolean):
        return bool(value)
    return value


def make_store(url: str) -> dict[str, int]:
    """Build a 0.1.0 store at `url` (which must be empty); the number of rows in each table."""
    engine = create_engine(url, poolclass=NullPool)  # pg_dump's script empties search_path for its session
    schema = (V010 / f"schema.{engine.dialect.name}.sql").read_text(encoding="utf-8")
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.connection.driver_connection.executescript(schema)  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql(schema)
    metadata = MetaData()
    with warnings.catch_warnings():  # its expression index cannot be reflected; rows need only columns
        warnings.simplefilter("ignore")
        metadata.reflect(engine)
    data = rows()
    with engine.begin() as conn:
        for name in TABLE_ORDER:
            table = metadata.tables[name]
            values = [{k: _value(table.c[k], v) for k, v in row.items()} for row in data[name]]
            if values:
                conn.execute(table.insert(), values)
        if engine.dialect.name == "postgresql":  # the ids came with the rows: move the sequences on
            for name in ("dump", "outbox", "paper"):
                conn.exec_driver_sql(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))")
    engine.dispose()
    return {name: len(data[name]) for name in TABLE_ORDER}


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {name: int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one()) for name in TABLE_ORDER}
    engine.dispose()
    return found
