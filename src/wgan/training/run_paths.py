"""The paths a run's config names, read from wherever the run is used.

A run's data file (``data.path``) is stored absolute (:func:`wgan.config.absolute_data_path`,
applied by :func:`wgan.config.resolve` and on resume). Runs saved before that may hold a path
relative to the folder they were trained in: :func:`resolve_stored_paths` joins it to a working
directory recorded in the run's ``provenance.json`` (the latest session's under which the file
exists, else the first session's), so that ``wgan eval`` and ``wgan train --resume`` find the
file from any folder.
"""

from __future__ import annotations

from pathlib import Path

from wgan.config import Config, absolute_data_path
from wgan.errors import WganError
from wgan.store import provenance


def resolve_stored_paths(run_dir: str | Path, cfg: Config) -> Config:
    """Make a relative ``cfg.data.path`` of the run in ``run_dir`` absolute, in place, against
    its recorded working directory (see the module docstring). Returns ``cfg``."""
    path = cfg.data.path
    if not isinstance(path, str) or not path.strip() or Path(path).expanduser().is_absolute():
        return cfg
    folders = _recorded_cwds(run_dir)
    found = next((f for f in reversed(folders) if (Path(f) / path).exists()), None)
    return absolute_data_path(cfg, found or (folders[0] if folders else None))


def _recorded_cwds(run_dir: str | Path) -> list[str]:
    """The absolute working directories of the run's sessions, oldest first (none when the
    record is missing or not readable: it is data, and a bad one only loses this help)."""
    try:
        entries = provenance.read(run_dir)
    except (WganError, OSError, ValueError):
        return []
    cwds = [e.get("cwd") for e in entries if isinstance(e, dict)]
    return [c for c in cwds if isinstance(c, str) and Path(c).is_absolute()]
