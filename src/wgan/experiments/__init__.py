"""Experiments that reproduce published claims about GANs and WGANs, each writing figures and
numbers to a run dir (the claims and their papers are in each module's docstring).

Each module registers its experiment with :func:`wgan.experiments.framework.register`; importing
them here, in one explicit place, fills :data:`EXPERIMENTS` in the order the report page shows.
``run_experiment(name, overrides)`` builds the settings (fast laptop-CPU defaults; ``key=value``
overrides are type-checked), creates a numbered run directory ``<out_dir>/NNNNN-exp-<name>`` and
runs it.
"""

from __future__ import annotations

import difflib

# TRANSITION (port in progress): import what imports
import importlib as _il
from collections.abc import Sequence
from pathlib import Path

from wgan.errors import ConfigError

for _m in [
    "parallel_lines",
    "clipping_vs_penalty",
    "loss_vs_quality",
    "mode_collapse",
    "overfitting",
    "f_divergences",
    "improved_techniques",
    "discrete_data",
    "random_architectures",
    "architectures",
    "momentum",
    "generator_only",
    "mode_hopping",
    "likelihood",
]:
    try:
        _il.import_module(f"wgan.experiments.{_m}")
    except ImportError as _e:
        import sys; print("TRANSITION: not ported", _m, _e, file=sys.stderr)
from wgan.experiments.common import apply_overrides
from wgan.experiments.framework import (
    EXPERIMENTS,
    Experiment,
    ExperimentResult,
    experiment_dir,
)


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ConfigError with close matches otherwise."""
    if name not in EXPERIMENTS:
        close = difflib.get_close_matches(name, list(EXPERIMENTS), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown experiment '{name}'{hint} (choose from {', '.join(EXPERIMENTS)})"
        )
    return EXPERIMENTS[name]


def run_experiment(
    name: str, overrides: Sequence[str] = (), out_dir: str | Path = "runs"
) -> ExperimentResult:
    """Run experiment ``name`` with ``key=value`` overrides in a new run directory."""
    experiment = get_experiment(name)
    settings = apply_overrides(experiment.settings(), overrides)
    return experiment.run(settings, experiment_dir(out_dir, name))


__all__ = ["EXPERIMENTS", "ExperimentResult", "get_experiment", "run_experiment"]
