"""Run the ``leitstand`` CLI in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_leitstand(args, pythonpath: Path | None = None, timeout: float = 60, cwd: Path | None = None, env=None):
    environment = dict(os.environ if env is None else env)
    if pythonpath is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), environment.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "dms_kernel", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env=environment,
    )
