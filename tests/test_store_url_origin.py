"""A store URL that cannot be used is named where it was given: --db, PAPERDIGEST_DB, or the
config file and its key `store.url` (DESIGN: a bad config is refused with the key path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_subprocess


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://x@localhost/db", "mysql is not supported"),
        ("not a url", "not a database URL"),
    ],
)
def test_a_bad_store_url_in_the_config_names_the_file_and_key(cli: Any, tmp_path: Path, url: str, reason: str) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f'[store]\nurl = "{url}"\n', encoding="utf-8")
    for command in (("status",), ("ingest", "--dry-run", str(tmp_path)), ("db", "upgrade")):
        result = cli("--config", str(conf), *command)
        assert result.code == 2
        assert result.err.startswith(f"paperdigest: error: {conf}: store.url: {reason}"), result.err
    daemon = run_subprocess("--config", str(conf), "run", "--once")
    assert daemon.code == 2 and daemon.err.startswith(f"paperdigest: error: {conf}: store.url: {reason}")


def test_a_bad_store_url_from_the_command_line_or_environment_is_named_so(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("--db", "mysql://x@localhost/db", "status")
    assert result.code == 2 and result.err.startswith("paperdigest: error: --db: mysql is not supported")
    monkeypatch.setenv("PAPERDIGEST_DB", "not a url")
    result = cli("status")
    assert result.code == 2 and result.err.startswith("paperdigest: error: PAPERDIGEST_DB: not a database URL")
