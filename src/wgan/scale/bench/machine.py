"""The machine a benchmark ran on, for :mod:`wgan.scale.bench`: CPU model, git commit, peak memory.

All read-only: ``/proc/cpuinfo`` (or :mod:`platform`), read-only git commands, and
``resource.getrusage`` for the peak resident set size of this process.
"""

from __future__ import annotations

import platform
import resource
import subprocess
import sys
from pathlib import Path

__all__ = ["cpu_model", "git_commit", "peak_rss_mb"]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git(where: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(where: Path | None = None) -> str:
    """``git rev-parse --short HEAD`` of the source tree, ``+dirty`` with uncommitted changes to
    tracked files, or ``'unknown'`` outside a git checkout (read-only git commands)."""
    where = where or Path(__file__).resolve().parent
    commit = _git(where, "rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    dirty = _git(where, "status", "--porcelain", "--untracked-files=no")
    return f"{commit}+dirty" if dirty else commit


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss: KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
