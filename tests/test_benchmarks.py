"""The benchmark harness runs end to end (issue 13, point 4): `benchmarks/bench.py --quick` with
tiny sizes and one pair, on SQLite and, where a server can be started, PostgreSQL. It checks that
the harness completes, that our store and the floor's agree and have the same tables and
indexes, and that every digest reached the sink from both sides. It never checks a time.

The mail part needs Postfix's smtp-sink: without it that test skips, saying what to install,
unless PAPERDIGEST_REQUIRE_SINK=1 (set by .ci/run), which makes it fail.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.pgserver import no_postgresql

pytestmark = pytest.mark.bench

BENCH = ROOT / "benchmarks" / "bench.py"
SUBSCRIBERS = 20
TINY = [
    "--quick", "--pairs", "1", "--dumps", "20", "--entries", "50", "--papers", "500",
    "--subscribers", str(SUBSCRIBERS), "--scale-small", "500", "--scale-large", "2000", "--scale-repeats", "1",
    "--scale-rounds", "1",
]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    # Nothing of the user's reaches the harness (it isolates its children too); the REQUIRE_ flags do.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERDIGEST_") or "_REQUIRE_" in k}
    done = subprocess.run([sys.executable, str(BENCH), *TINY, "--json"], capture_output=True, text=True, env=env,
                          timeout=300, check=False, cwd=ROOT)
    assert done.returncode == 0, f"the harness failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def figures(report: dict[str, Any], part: str, engine: str) -> list[dict[str, Any]]:
    return [f for f in report.get(part, {}).get("figures", []) if f["engine"] == engine]


def check_ingest(found: list[dict[str, Any]], cores: list[int]) -> None:
    assert [f["cores"] for f in found] == cores
    for figure in found:
        assert figure["problems"] == []
        assert figure["pairs"] == 1
        assert figure["info"]["stores_agree"] is True
        assert figure["info"]["schemas_agree"] is True
        assert figure["info"]["store"]["sightings"] == 20 * 50
        assert figure["ratio"]["median"] is not None  # a figure was made; its value is not judged here


def check_mail(found: list[dict[str, Any]], cores: list[int]) -> None:
    assert [f["cores"] for f in found] == cores
    for figure in found:
        assert figure["problems"] == []
        assert figure["info"]["messages"] == SUBSCRIBERS
        assert figure["ratio"]["median"] is not None


def cores_measured() -> list[int]:
    return [1, 2] if len(os.sched_getaffinity(0)) > 1 else [1]


def test_ingest_pairs_on_sqlite_store_the_same_as_the_floor(report: dict[str, Any]) -> None:
    check_ingest(figures(report, "ingest", "sqlite"), cores_measured())
    assert report["problems"] == []
    assert all(isinstance(t["pass"], bool) for t in report["targets"])


def test_mail_pairs_on_sqlite_deliver_every_digest_from_both_sides(report: dict[str, Any]) -> None:
    if report["machine"]["smtp_sink"] is None:
        message = "the mail benchmark needs Postfix's smtp-sink: `apt-get install postfix`"
        if os.environ.get("PAPERDIGEST_REQUIRE_SINK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    check_mail(figures(report, "mail", "sqlite"), cores_measured())


def test_the_same_pairs_run_on_postgresql(report: dict[str, Any]) -> None:
    if report["machine"]["postgresql"] is None:
        no_postgresql("the harness could not start a PostgreSQL server")
    check_ingest(figures(report, "ingest", "postgresql"), cores_measured())
    if report["machine"]["smtp_sink"] is not None:
        check_mail(figures(report, "mail", "postgresql"), cores_measured())


def test_scale_independence_is_measured(report: dict[str, Any]) -> None:
    scale = report["scale"]
    assert scale["small"]["papers"] == 500 and scale["large"]["papers"] == 2000
    assert len(scale["small"]["samples_ms"]) == len(scale["large"]["samples_ms"]) == 1


def test_reads_at_scale_and_start_up_are_measured(report: dict[str, Any]) -> None:
    """Every read command and one ingest on three stores, the smallest the floor; start-up of
    `--version` and `status`. Rows exist and hold figures; no figure is judged."""
    reads = report["scale"]["reads"]
    assert reads["problems"] == []
    assert reads["sizes"] == [500, 1000, 2000]  # --scale-mid outside 500..2000: their geometric mean
    # Each store's topic index is built before the rounds, so `papers --topic` reads it there.
    assert len(reads["topic_index_s"]) == 3 and all(s is not None for s in reads["topic_index_s"])
    commands = {"papers --top", "papers --topic", "status", "digest (one subscriber)", "ingest (50 entries)"}
    assert {(f["command"], f["papers"]) for f in reads["figures"]} == {(c, n) for c in commands for n in reads["sizes"]}
    for figure in reads["figures"]:
        assert len(figure["ratio"]["each"]) == 1 and figure["peak_rss_mb"] > 0
        if figure["papers"] == 500:
            assert figure["ratio"]["median"] == 1.0  # the floor against itself
    named = [t["target"] for t in report["targets"]]
    for command in commands:
        assert any(f"`{command}`, 2,000 papers / 500" in name for name in named)
        assert any(f"`{command}` peak RSS" in name for name in named)
    assert set(report["startup"]) == {"python -c pass", "paperdigest --version", "paperdigest status"}
    assert any(name.startswith("start-up: `paperdigest status`") for name in named)


def test_the_kill_loop_places_a_kill_from_the_outbox_and_the_probe() -> None:
    """Pure logic of benchmarks/kill_loop.py: where a kill landed, from the rows it left (50 claimed at
    a time), the probe's counts (MAIL begun, "." handed over, 250 read) and the repeats."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        kill_loop = importlib.import_module("kill_loop")  # it imports its neighbours in benchmarks/
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rows = [(f"r{i}", "sent", f"<{i}>") for i in range(3)] + [(f"r{i}", "sending", f"<{i}>") for i in range(3, 6)]
    assert kill_loop.place(rows, [4, 4, 3], []) == kill_loop.SERVER  # "." out, its 250 not read
    # The "." went out but the probe had not counted it yet (preempted right after the write):
    # the server stored the whole message, so its repeat is the server's part, not ours.
    assert kill_loop.place(rows, [4, 3, 3], ["r3"]) == kill_loop.SERVER
    assert kill_loop.place(rows, [4, 3, 3], []) == kill_loop.SENDING
    assert kill_loop.place(rows, [4, 4, 4], []) == kill_loop.OURS  # 250 read, the row not marked
    assert kill_loop.place(rows, [3, 3, 3], []) == kill_loop.CLAIMING
    assert kill_loop.place([(f"r{i}", "sent", f"<{i}>") for i in range(3)], [3, 3, 3], []) == kill_loop.BETWEEN
