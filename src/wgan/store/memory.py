"""How much memory this machine has free now: the bound on what a file may ask us to hold.

Loaders of files that come from elsewhere (IDX data, checkpoints) compare the number of bytes a
file's header or directory promises with :func:`available_memory` *before* they allocate or
inflate anything, so a small hostile file cannot ask for more memory than the machine has.

On Linux the figure is ``MemAvailable`` of ``/proc/meminfo`` (the kernel's estimate of the
memory that can be allocated without swapping, page cache included; Linux 3.14+,
Documentation/filesystems/proc.rst). Elsewhere it is the free physical memory that
``os.sysconf`` reports, and ``None`` (no bound from memory) where neither is known. This module
imports nothing from the package, so any layer may use it.
"""

from __future__ import annotations

import os

__all__ = ["available_memory", "format_bytes"]


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    """``MemAvailable`` in bytes, or None when the file or the line is missing."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    parts = line.split()
                    scale = 1024 if len(parts) > 2 and parts[2].lower() == "kb" else 1
                    return int(parts[1]) * scale
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory() -> int | None:
    """Bytes of memory this process could allocate now without swapping; None if unknown."""
    found = _meminfo_available()
    if found is not None:
        return found
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n: int) -> str:
    """``n`` bytes for a message: ``268,435,456 bytes (256.0 MiB)``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n:,} bytes ({n / size:.1f} {unit})"
    return f"{n:,} bytes"
