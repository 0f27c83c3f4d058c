"""Extending a study: ``wgan study FILE train.steps=N`` continues each run to N steps, as
``wgan train --resume RUN train.steps=N`` continues one run.

A run of a study keeps the name it was trained under; running the study again with a config
that differs from the run's only in keys a resume may change
(:data:`wgan.config.RESUME_MAY_CHANGE`: ``train.steps``, learning rates, cadences, ...) resumes
the run from its checkpoint with the new values (:func:`resume_overrides`, used by the study's
worker), checked as ``wgan train --resume`` checks them. A run already at or beyond the new
``train.steps`` is left as it is; a diverged run stays diverged. A difference in any other key
(a shape, the objective, the data) is still refused: those runs are other runs and need other
names (:func:`study_changes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wgan.config import RESUME_MAY_CHANGE, Config, apply_mapping, changed_keys
from wgan.errors import WganError
from wgan.store import rundirs

__all__ = ["describe_changes", "resume_overrides", "study_changes"]


def study_changes(
    saved: Config, cfg: Config, ignored: tuple[str, ...]
) -> tuple[dict[str, tuple[Any, Any]], dict[str, tuple[Any, Any]]]:
    """``(extends, refused)``: the keys outside ``ignored`` in which ``cfg`` differs from the
    ``saved`` config of a study's run, split into those a resume may change and the others,
    each ``key -> (old, new)``."""
    diff = {k: v for k, v in changed_keys(saved, cfg).items() if k not in ignored}
    extends = {k: v for k, v in diff.items() if k in RESUME_MAY_CHANGE}
    return extends, {k: v for k, v in diff.items() if k not in extends}


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    """``train.steps=1000 (was 500), d_optim.lr=0.0001 (was 0.0002)``."""
    return ", ".join(f"{k}={new!r} (was {old!r})" for k, (old, new) in changes.items())


def resume_overrides(run_dir: str | Path, cfg: Config) -> dict[str, Any]:
    """The overrides that resume the study run in ``run_dir`` with ``cfg``: its device and
    progress bar, and every key of :data:`wgan.config.RESUME_MAY_CHANGE` in which ``cfg``
    differs from the run's ``config.yaml`` (the config of its checkpoint). A ``config.yaml``
    that cannot be read adds nothing: the resume reports it."""
    out: dict[str, Any] = {"train.device": cfg.train.device, "train.progress": cfg.train.progress}
    saved = Config()
    try:
        apply_mapping(saved, rundirs.read_config(Path(run_dir)))
    except WganError:
        return out
    for key, (_, new) in changed_keys(saved, cfg).items():
        if key in RESUME_MAY_CHANGE:
            out[key] = new
    return out
