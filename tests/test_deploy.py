"""deploy/: the systemd unit passes `systemd-analyze verify` and rates an exposure of at most 2.0
under `systemd-analyze security`; the example config loads and agrees with the unit.

systemd-analyze is required (Debian: `apt-get install systemd`); it works without systemd
running as PID 1 (`verify` on a unit file path, `security --offline=true`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paperdigest import config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "paperdigest.service"
WEB_UNIT = DEPLOY / "paperdigest-web.service"
UNITS = pytest.mark.parametrize("unit_file", [UNIT, WEB_UNIT], ids=lambda path: path.name)
EXAMPLE = DEPLOY / "config.example.toml"
UNIT_NAME = UNIT.name
INSTALLED_EXEC = "/opt/paperdigest/venv/bin/paperdigest"
MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is not installed: run `apt-get install systemd` (no running systemd is needed)")
    return found


def run_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "info", "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C"}
    return subprocess.run([systemd_analyze(), *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def directives(path: Path) -> dict[str, list[str]]:
    """Key -> values of a unit file (repeated keys keep every value, in order)."""
    result: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        result.setdefault(key.strip(), []).append(value.strip())
    return result


def paperdigest_executable() -> str:
    """The `paperdigest` installed beside the running interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("paperdigest")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("paperdigest")
    if found is None:
        pytest.fail("the `paperdigest` console script is not installed: `pip install -e .`")
    return found


def local_copy(tmp_path: Path, text: str | None = None, unit_file: Path = UNIT) -> Path:
    """The unit with ExecStart pointed at the paperdigest installed here (the /opt venv does not
    exist on a test machine, and verify rightly refuses a missing executable). Nothing else changes."""
    text = unit_file.read_text(encoding="utf-8") if text is None else text
    prefix = f"ExecStart={INSTALLED_EXEC} "
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    assert len(starts) == 1, f"expected exactly one line starting with {prefix!r} in {unit_file}"
    lines[starts[0]] = lines[starts[0]].replace(INSTALLED_EXEC, paperdigest_executable(), 1)
    folder = tmp_path / "units"
    folder.mkdir()
    copy = folder / unit_file.name
    copy.write_text("".join(lines), encoding="utf-8")
    return copy


def verify_complaints(unit: Path) -> tuple[int, list[str], str]:
    """Exit code of `systemd-analyze verify` and its lines about this unit (unknown keys,
    values it could not parse, missing commands...): systemd only warns about most of them."""
    proc = run_analyze("verify", "--man=no", str(unit))
    output = proc.stdout + proc.stderr
    about_unit = [line for line in output.splitlines() if str(unit) in line or f"{unit.name}:" in line]
    return proc.returncode, about_unit, output


# --- the unit ------------------------------------------------------------------------------


@UNITS
def test_unit_verifies_cleanly(tmp_path: Path, unit_file: Path) -> None:
    code, complaints, output = verify_complaints(local_copy(tmp_path, unit_file=unit_file))
    assert code == 0, f"systemd-analyze verify failed ({code}):\n{output}"
    assert complaints == [], "systemd-analyze verify complains about the unit:\n" + "\n".join(complaints)


def test_verify_check_catches_bad_directives(tmp_path: Path) -> None:
    """The check above would notice a typo: verify only warns (exit 0) about unknown keys."""
    broken = UNIT.read_text(encoding="utf-8").replace("ProtectSystem=strict", "ProtectSystem=bogus\nProtectSytem=yes")
    _code, complaints, output = verify_complaints(local_copy(tmp_path, broken))
    assert any("ProtectSytem" in line for line in complaints), output
    assert any("bogus" in line for line in complaints), output


@UNITS
def test_unit_exposure_is_at_most_2(unit_file: Path) -> None:
    proc = run_analyze("security", "--offline=true", "--no-pager", str(unit_file))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"systemd-analyze security failed ({proc.returncode}):\n{output}"
    match = re.search(rf"Overall exposure level for {re.escape(unit_file.name)}: (\d+(?:\.\d+)?)", output)
    assert match, f"no 'Overall exposure level' line in:\n{output}"
    exposure = float(match[1])
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{output}"


def test_unit_contract() -> None:
    """What DESIGN.md and the daemon rely on: sd_notify, watchdog, reload, state, credential."""
    unit = directives(UNIT)

    def one(key: str) -> str:
        assert key in unit, f"{key}= missing from {UNIT}"
        assert len(unit[key]) == 1, f"{key}= given {len(unit[key])} times"
        return unit[key][0]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("ExecStart") == f"{INSTALLED_EXEC} --config /etc/paperdigest/config.toml run"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("WatchdogSec") == "60"
    assert one("KillSignal") == "SIGTERM"
    assert one("Restart") == "on-failure"
    assert one("DynamicUser") == "yes"
    assert one("StateDirectory").split()[0] == "paperdigest"
    assert one("ConfigurationDirectory") == "paperdigest"
    assert one("LoadCredential") == "smtp:/etc/paperdigest/smtp-password"
    assert "PYTHONUNBUFFERED=1" in " ".join(unit["Environment"])
    assert one("RestrictAddressFamilies").split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert "ExecStartPre" not in unit, "systemd 252 hides credentials from all but the first command"


def test_web_unit_contract() -> None:
    """The web side runs as the daemon's user on the daemon's state (the store, and the secret the
    daemon signs mailed links with), serves `paperdigest web`, and the daemon does not need it."""
    daemon, web = directives(UNIT), directives(WEB_UNIT)
    assert web["ExecStart"] == [f"{INSTALLED_EXEC} --config /etc/paperdigest/config.toml web"]
    assert web["Type"] == ["exec"]  # uvicorn does not speak sd_notify
    for shared in ("DynamicUser", "User", "Group", "UMask", "ConfigurationDirectory", "WorkingDirectory"):
        assert web[shared] == daemon[shared], shared
    assert web["StateDirectory"][0].split()[0] == daemon["StateDirectory"][0].split()[0]
    assert "LoadCredential" not in web, "the web side needs no SMTP password"
    needs = [value for key in ("Wants", "Requires", "BindsTo") for value in daemon.get(key, [])]
    assert not any("paperdigest-web" in value for value in needs)
    # The same sandbox, line for line: the web side is no less hardened than the daemon.
    sandbox = [key for key in daemon if key.startswith(("Protect", "Private", "Restrict", "SystemCall", "Lock"))]
    for key in [*sandbox, "NoNewPrivileges", "CapabilityBoundingSet", "MemoryDenyWriteExecute", "ProcSubset"]:
        assert web.get(key) == daemon[key], key


# --- the example config ----------------------------------------------------------------------


def test_example_config_loads() -> None:
    settings = config.load(EXAMPLE)
    assert settings.origin == str(EXAMPLE)
    assert [(s.name, s.kind, s.every) for s in settings.sources] == [
        ("inbox", "directory", "5m"),
        ("hf-daily", "huggingface", "1h"),
    ]
    assert settings.sources[0].path == Path("/var/lib/paperdigest/inbox")
    assert settings.sources[1].api_url == "https://huggingface.co/api/daily_papers"
    assert 2 <= len(settings.topics) <= 3
    assert len(settings.subscribers) == 2
    assert settings.mail.transport == "smtp"
    assert settings.mail.security == "starttls"


def test_example_config_matches_the_unit() -> None:
    """The password file is where LoadCredential= puts the credential; the store, the inbox and
    everything else the daemon writes are inside the unit's StateDirectory=."""
    settings = config.load(EXAMPLE)
    unit = directives(UNIT)
    name, _, _source = unit["LoadCredential"][0].partition(":")
    assert settings.mail.password_file == Path("/run/credentials") / UNIT_NAME / name
    state_dirs = [Path("/var/lib") / d for d in unit["StateDirectory"][0].split()]
    assert settings.store.url == f"sqlite:///{state_dirs[0] / 'papers.db'}"
    inbox = settings.sources[0].path
    assert inbox in state_dirs, f"{inbox} is not created by StateDirectory= {unit['StateDirectory'][0]}"


def test_example_config_has_no_secret() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert not re.search(r"^\s*password\s*=", text, re.MULTILINE)
