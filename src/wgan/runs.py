"""Run directories and crash-safe checkpoints.

A run lives in ``<out_dir>/<NNNNN>-<name>/`` and holds ``config.yaml`` (the resolved config),
``metrics.jsonl``, ``tb/`` (TensorBoard), ``figures/`` and ``checkpoint.pt``.

Checkpoints are written to a temporary file in the same folder, flushed to disk, and then moved
over the old one with ``os.replace``, which is atomic: a crash while saving leaves the previous
checkpoint intact. They are loaded with ``torch.load(weights_only=True)``, which unpickles only
tensors and plain containers, so a checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
import yaml

from wgan.errors import WganError

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"
_RUN_RE = re.compile(r"^(\d{5})-")


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """Create and return the next numbered run directory ``out_dir/NNNNN-name``."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    for _ in range(100):  # another process may take the same number: retry with the next
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
        path = root / f"{max(numbers, default=-1) + 1:05d}-{safe}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise WganError(f"could not create a new run directory in {root}")


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    (Path(run_dir) / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))


def read_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise WganError(f"{run_dir} is not a run directory (no {CONFIG})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise WganError(f"{path} is not valid YAML: {err}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise WganError(f"{path} does not hold a config mapping")
    return data


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` to ``path`` (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    # Make the rename itself durable.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (no code execution); raise WganError if missing or corrupt."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise WganError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WganError(f"cannot load checkpoint {path}: {first}") from None
    if not isinstance(state, dict) or "step" not in state or "generator" not in state:
        raise WganError(f"{path} is not a wgan checkpoint")
    return state
