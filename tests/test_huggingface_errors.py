"""What `backfill --source` says when a day cannot be fetched: the README promises it names the day
("exit 1 naming it"), but the URL in an HTTP error hides its query (date=…), so a 500, a redirect
loop or an oversized answer named no day at all; and a cut-off answer was called "not a JSON
array" as if it were some other JSON. Run against the loopback daily-papers server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.hf_server import Canned, DailyPapersServer
from tests.test_huggingface_source import BY_DAY, D, FakeClock, backfill_config, fake_clock, server  # noqa: F401  fixtures


@pytest.mark.parametrize(
    "answers, reason",
    [
        ([Canned(500)] * 4, "HTTP 500 (after 4 tries)"),
        ([Canned(200, b'[{"paper": {"id": "2305.1')], "(Unterminated string starting at: byte 18 of 25; cut off?)"),
        ([Canned(200, b"<html><body>maintenance</body></html>")], "not JSON (Expecting value: byte 0 of 37)"),
        ([Canned(200, b'{"error": "rate limited"}')], "the answer is not a JSON array of daily-papers items"),
    ],
    ids=["500", "cut off", "html", "an object"],
)
def test_a_day_that_cannot_be_fetched_is_named(
    cli: Any,
    server: DailyPapersServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_clock: FakeClock,  # noqa: F811
    answers: list[Canned],
    reason: str,
) -> None:
    monkeypatch.setenv("PAPERDIGEST_NOW", "2023-06-10T12:00:00+00:00")
    conf, db = backfill_config(tmp_path, server), f"sqlite:///{tmp_path / 'b.db'}"
    server.canned.append(Canned(200, json.dumps(BY_DAY[D(2023, 5, 4)]).encode()))  # the first day is fine
    server.canned.extend(answers)  # the second is not
    done = cli("--config", str(conf), "--db", db, "backfill", "--source", "hf", "--json",
               "--from", "2023-05-04", "--to", "2023-05-08")  # fmt: skip
    assert done.code == 1, done.err
    assert [line["as_of"] for line in done.json_lines()] == ["2023-05-04"]  # the day before it is kept
    (line,) = done.err.strip().splitlines()
    assert line.startswith("paperdigest: error: source hf: 2023-05-05 page 0: "), line
    assert reason in line, line
