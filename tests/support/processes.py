"""Run a real process and measure its peak memory.

``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the largest resident set of any child a process has
waited for, ever; in the test process that would include every earlier subprocess of the session. So the
command runs under a small Python parent of its own, which waits for it and reports the figure for that
one child (and the children it waited for, e.g. a scheduler).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_MEASURE = """
import json, resource, subprocess, sys
with open(sys.argv[1], "ab") as log:
    code = subprocess.run(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).returncode
print(json.dumps({"returncode": code, "peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def run_measured(command: Sequence[str], *, log: Path, env: dict[str, str], cwd: Path,
                 timeout: float) -> tuple[int, float]:
    """Run ``command`` to its end, its output appended to ``log``; returns ``(exit code, peak RSS in MB)``."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(log), *command], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return int(figures["returncode"]), figures["peak_rss_kb"] / 1024


__all__ = ["run_measured"]
