"""`status` reads the store through its reflected tables (store/status.py, issue 13: no SQLModel at
start-up). Those reads must be the ones the SQLModel tables give: the same columns, the same
values typed the same way (dates, aware or naive moments, booleans, NULLs), on both engines."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from paperdigest.store import status
from paperdigest.store.tables import metadata
from tests.conftest import SEEDS
from tests.storehelp import insert as insert_all


def insert(url: str, name: str, *rows: dict[str, Any]) -> None:
    for row in rows:  # one at a time: the rows name different columns
        insert_all(url, name, row)

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def outbox(email: str, period: str, state: str, **values: Any) -> dict[str, Any]:
    moment = at(period)
    return {"subscriber": email, "period": moment, "window_start": moment, "window_end": moment,
            "created_at": moment, "status": state, "attempts": 1, "next_attempt_at": moment,
            "message_id": f"<{email}.{period}@x>", "subject": "s", "papers": "{}", **values}


def filled_store(cli: Any, db_url: str) -> None:
    """Every table `status` reads holds rows, with NULLs and values in each typed column."""
    assert cli("--db", db_url, "ingest", str(SEEDS)).code == 0
    insert(db_url, "outbox",
           outbox("a@x.org", "2026-11-30 07:00", "failed", claimed_at=at("2026-11-30 07:01"), last_error="550 no"),
           outbox("b@x.org", "2026-11-29 07:00", "pending", last_error="451 later"),
           outbox("c@x.org", "2026-11-28 07:00", "sent", sent_at=at("2026-11-28 07:02")),
           outbox("d@x.org", "2026-11-27 07:00", "sending", claimed_by="r1", claimed_at=at("2026-11-27 07:00")))
    insert(db_url, "source_state",
           {"name": "inbox", "last_poll_at": at("2026-12-01 11:00"), "last_success_at": at("2026-12-01 11:00"),
            "last_entries": 0, "failures": 0, "complete_through": dt.date(2026, 11, 30)},
           {"name": "web", "last_error_at": at("2026-12-01 10:00"), "last_error": "timeout", "failures": 3})
    insert(db_url, "rejection",
           {"source": "inbox", "file_key": "k1", "file": "bad.txt", "reason": "not a listing",
            "as_of": dt.date(2026, 11, 30), "rejected_at": at("2026-11-30 08:00")},
           {"source": "inbox", "file_key": "k2", "file": "old.txt", "reason": "settled", "as_of": dt.date(2026, 11, 29),
            "rejected_at": at("2026-11-29 08:00"), "resolved_at": at("2026-11-30 09:00")})
    insert(db_url, "replica",
           {"id": "r1", "host": "h", "pid": 1, "role": "leader", "started_at": at("2026-12-01 00:00"),
            "last_seen": at("2026-12-01 11:59")},
           {"id": "r2", "host": "h", "pid": 2, "role": "standby", "started_at": at("2026-12-01 00:01"),
            "last_seen": at("2026-12-01 11:58")})
    insert(db_url, "subscriber",
           {"email": "e@x.org", "settings": '{"email": "e@x.org", "topics": []}', "added_at": at("2026-11-01 00:00")},
           {"email": "f@x.org", "settings": None, "added_at": at("2026-11-01 00:00"),
            "unsubscribed_at": at("2026-11-02 00:00")})


def test_status_reads_through_reflected_tables_equal_those_through_the_sqlmodel_tables(
    cli: Any, db_url: str
) -> None:
    filled_store(cli, db_url)
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            reflected = status.reflect(conn)
            models = {name: metadata.tables[name] for name in status.TABLES}
            by_reflection = status.read(conn, reflected, 3, NOW - dt.timedelta(days=7), NOW - dt.timedelta(days=7))
            by_models = status.read(conn, models, 3, NOW - dt.timedelta(days=7), NOW - dt.timedelta(days=7))
    finally:
        engine.dispose()
    assert set(reflected) == set(status.TABLES)
    for name in status.TABLES:  # every column of the models, no other (in the migrations' order)
        assert {c.name for c in reflected[name].columns} == {c.name for c in models[name].columns}, name
    for field in dataclasses.fields(status.StoreStatus):
        ours, theirs = getattr(by_reflection, field.name), getattr(by_models, field.name)
        if isinstance(ours, dict):
            ours, theirs = sorted(ours.items()), sorted(theirs.items())
        assert typed(ours) == typed(theirs), field.name
    # Not vacuous: every read found rows.
    assert by_models.counts["papers"] > 0 and len(by_models.last_dumps) == 3
    assert by_models.mail == {"failed": 1, "pending": 1, "sent": 1, "sending": 1}
    assert [row.subscriber for row in by_models.attention] == ["a@x.org", "b@x.org", "d@x.org"]
    assert by_models.failed_since == 1 and [row.file for row in by_models.rejections] == ["bad.txt"]
    assert set(by_models.source_states) == {"inbox", "web"} and len(by_models.replicas) == 2
    assert [row.email for row in by_models.subscribers] == ["e@x.org", "f@x.org"]


def typed(value: Any) -> Any:
    """Rows as (type, value) pairs: a date that came back as text, or a bool as 1, would differ."""
    if isinstance(value, list | tuple):
        return [typed(v) for v in value]
    if hasattr(value, "_mapping"):
        return sorted((k, type(v).__name__, v) for k, v in value._mapping.items())
    return (type(value).__name__, value)
