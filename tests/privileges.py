"""Running a command as the service's user would: root reads and writes any file whatever its mode,
so tests of permissions drop the capabilities that let it."""

from __future__ import annotations

import os
import shutil


def without_root_override(command: list[str]) -> list[str]:
    """Root reads a mode-000 file anyway: drop the capabilities that let it (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH) for the command, so mode 000 means what it means for the service's user."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to run this test as root"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *command]
