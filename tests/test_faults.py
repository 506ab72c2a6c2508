"""Faults from outside: a full disk, one store reached by several paths. One clear line, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paperdigest.lock import AlreadyRunning, InstanceLock, lock_path
from tests.conftest import run_subprocess


def test_a_full_disk_at_the_lock_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC: the lock's pid write meets a full disk."""
    store = tmp_path / "papers.db"
    (tmp_path / "papers.db.lock").symlink_to("/dev/full")
    for args in (["run", "--once"], ["run"]):
        result = run_subprocess("--db", f"sqlite:///{store}", *args, env={"STATE_DIRECTORY": str(tmp_path / "s")})
        assert result.code == 1, result.err
        assert "Traceback" not in result.err
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0] and "papers.db.lock" in lines[0]


@pytest.mark.parametrize("how", ["symlink", "dotdot"])
def test_one_instance_per_store_whatever_the_path(tmp_path: Path, how: str) -> None:
    (tmp_path / "data").mkdir()
    store = tmp_path / "data" / "papers.db"
    if how == "symlink":
        other = tmp_path / "alias.db"
        other.symlink_to(store)
    else:
        (tmp_path / "elsewhere").mkdir()
        other = tmp_path / "elsewhere" / ".." / "data" / "papers.db"
    assert lock_path(f"sqlite:///{other}") == lock_path(f"sqlite:///{store}")
    with InstanceLock(lock_path(f"sqlite:///{store}")):
        with pytest.raises(AlreadyRunning), InstanceLock(lock_path(f"sqlite:///{other}")):
            pass
        second = run_subprocess(
            "--db", f"sqlite:///{other}", "run", "--once", env={"STATE_DIRECTORY": str(tmp_path / "s")}
        )
        assert second.code == 1 and "already running" in second.err
    assert os.path.realpath(other) == str(store)
