"""paperdigest installs under its own import name, beside python-daemon (which owns `daemon`).

The folder daemon/ of the checkout is installed as `paperdigest`; nothing is installed as
`daemon`. The test environment itself has python-daemon installed (a test dependency), so the
whole suite runs with `import daemon` meaning python-daemon's package.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_subprocess


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300, check=False
    )


def test_python_daemon_is_installed_beside_us(tmp_path: Path) -> None:
    """Outside the checkout (whose folder daemon/ would shadow it), `daemon` is python-daemon's."""
    probe = _run(
        sys.executable,
        "-c",
        "import daemon, paperdigest; print(hasattr(daemon, 'DaemonContext'), daemon.__file__, paperdigest.__file__)",
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    has_context, daemon_file, ours = probe.stdout.split()
    assert has_context == "True", f"`daemon` is not python-daemon's package: {daemon_file}"
    # ours: the installed package, or (an editable install) the checkout's folder daemon/
    assert Path(ours).parent.name in ("paperdigest", "daemon") and Path(ours).parent != Path(daemon_file).parent
    assert importlib.metadata.version("python-daemon")
    result = run_subprocess("--version", cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.out.startswith("paperdigest ")


def test_the_console_script_runs_beside_python_daemon(tmp_path: Path) -> None:
    script = Path(sysconfig.get_path("scripts")) / "paperdigest"
    assert script.exists(), f"{script}: the console script is not installed"
    result = _run(script, "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("paperdigest ")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # From a copy of the tracked files: a build/ folder left in the checkout could add stale modules.
    source = tmp_path_factory.mktemp("source") / "paperdigest"
    tracked = _run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    # Offline: setuptools and wheel are test dependencies, so no build environment is fetched.
    result = _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", out, source,
        cwd=source,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (found,) = out.glob("paperdigest-*.whl")
    return found


def test_the_wheel_holds_paperdigest_and_no_daemon(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert "daemon" not in top, f"the wheel installs a `daemon` package: {sorted(top)}"
    assert {"paperdigest/cli.py", "paperdigest/__main__.py", "paperdigest/py.typed"} <= set(names)
    assert any(n.startswith("paperdigest/templates/") and n.endswith(".j2") for n in names)
    assert any(n.startswith("paperdigest/seeds/") and n.endswith(".txt") for n in names)
    # Every package of the source folder is in the wheel (the list in pyproject.toml is kept by hand).
    packages = {str(p.parent.relative_to(ROOT / "daemon")) for p in (ROOT / "daemon").rglob("__init__.py")}
    for package in packages:
        prefix = "paperdigest/" if package == "." else f"paperdigest/{package}/"
        assert f"{prefix}__init__.py" in names, f"{package} is missing from the wheel: add it to pyproject.toml"
    assert "paperdigest/store/migrations/script.py.mako" in names


def test_a_fresh_environment_with_both_runs_the_cli(wheel: Path, tmp_path: Path) -> None:
    """A new venv holding our wheel; python-daemon and the other dependencies come from this
    environment's site-packages (a .pth line: no index is needed, and no editable hook leaks in)."""
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    (site / "outer.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    installed = _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel
    )
    assert installed.returncode == 0, installed.stderr
    assert not (site / "daemon").exists()
    assert (site / "paperdigest" / "cli.py").exists()

    for command in ([venv / "bin" / "paperdigest", "--version"], [python, "-m", "paperdigest", "--version"]):
        result = _run(*command, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("paperdigest ")
    probe = _run(
        python,
        "-c",
        "import daemon, paperdigest; print(hasattr(daemon, 'DaemonContext')); print(paperdigest.__file__)",
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    has_context, where = probe.stdout.split()
    assert has_context == "True"
    assert Path(where).is_relative_to(site)
    # The embedded default finds its seeds and templates inside the installed package.
    parsed = _run(python, "-m", "paperdigest", "parse", site / "paperdigest" / "seeds", cwd=tmp_path)
    assert parsed.returncode == 0, parsed.stderr
    assert parsed.stdout.count("\n") > 100
