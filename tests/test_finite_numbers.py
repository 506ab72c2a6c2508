"""Numbers in the config and on the command line are finite: TOML's `nan` and `inf` (and a float
that overflows to it) are refused with the key path, never taken as a value no score can reach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_subprocess


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[[subscribers]]\nemail = "ada@example.org"\nmin_score = nan\n', "subscribers[0].min_score"),
        ('[[subscribers]]\nemail = "ada@example.org"\nmin_score = inf\n', "subscribers[0].min_score"),
        ("[scoring]\nupvotes = inf\n", "scoring.upvotes"),
        ("[scoring]\ntitle = inf\n", "scoring.title"),
        ("[digest]\nrising_factor = inf\n", "digest.rising_factor"),
        ("[limits]\nfetch_deadline = inf\n", "limits.fetch_deadline"),
        ("[mail]\ntimeout = inf\n", "mail.timeout"),
    ],
)
def test_a_config_number_that_is_not_finite_is_refused(tmp_path: Path, toml: str, key: str) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(toml, encoding="utf-8")
    result = run_subprocess("--config", str(conf), "--db", "sqlite://", "status")
    assert result.code == 2, result.out + result.err
    assert result.err.strip() == f"paperdigest: error: {conf}: {key}: Input should be a finite number"


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-inf"])
def test_subscribers_add_refuses_a_min_score_that_is_not_finite(cli: Any, tmp_path: Path, value: str) -> None:
    url = f"sqlite:///{tmp_path / 'papers.db'}"
    result = cli("--db", url, "subscribers", "add", "ada@example.org", f"--min-score={value}")
    assert result.code == 2
    assert result.err.strip() == "paperdigest: error: subscribers add: min_score: Input should be a finite number"
    listed = cli("--db", url, "subscribers", "list", "--json")
    assert [s["origin"] for s in listed.json_lines()] == ["config"]  # only the embedded default's demo

