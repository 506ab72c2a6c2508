"""test_no_store.py's rule on both engines: a command that only looks at the store never creates
one. On PostgreSQL `status` or `papers` pointed at an empty database, or at another program's,
used to create paperdigest's whole schema there and report a healthy, empty store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from paperdigest.store.engine import shown_url

LOOKING = [("status",), ("papers", "--top", "5"), ("subscribers", "list", "--json"), ("send", "--dry-run")]


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("other", [False, True], ids=["empty database", "another program's database"])
@pytest.mark.parametrize("command", LOOKING, ids=" ".join)
def test_a_looking_command_on_a_database_without_a_store_creates_nothing(
    cli: Any, new_store: Callable[..., str], engine_name: str, command: tuple[str, ...], other: bool
) -> None:
    url = new_store(empty=True)
    if other:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
        engine.dispose()
    before = tables(url) if other or engine_name == "postgresql" else set()
    result = cli("--db", url, *command)
    assert result.code == 1, result.out + result.err
    assert result.out == ""
    (line,) = result.err.strip().splitlines()
    assert line.startswith("paperdigest: error: no store ") and "nothing created" in line, line
    if engine_name == "postgresql":
        assert shown_url(url) in line
        why = "a database without paperdigest's tables" if other else "a database without tables"
        assert f"({why}; nothing created)" in line, line
    after = tables(url) if other or engine_name == "postgresql" else set()
    assert after == before == ({"customers"} if other else set())
