"""Experiments that reproduce published claims about GANs and WGANs, each writing figures and
numbers to a run dir (the claims and their papers are in each module's docstring).

Each module registers its experiment with :func:`wgan.experiments.framework.register`; importing
them here, in one explicit place, fills :data:`EXPERIMENTS` in the order the report page shows.
``run_experiment(name, overrides, quick=False)`` builds the settings (fast laptop-CPU defaults,
or the quick size; ``key=value`` overrides are type-checked), creates a numbered run directory
``<out_dir>/NNNNN-exp-<name>`` and runs it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from wgan.errors import ConfigError

# The import order is the registration order, which the report page follows.
# isort: off
from wgan.experiments import parallel_lines  # noqa: F401 - importing registers it
from wgan.experiments import clipping_vs_penalty  # noqa: F401
from wgan.experiments import loss_vs_quality  # noqa: F401
from wgan.experiments import mode_collapse  # noqa: F401
from wgan.experiments import overfitting  # noqa: F401
from wgan.experiments import f_divergences  # noqa: F401
from wgan.experiments import improved_techniques  # noqa: F401
from wgan.experiments import discrete_data  # noqa: F401
from wgan.experiments import random_architectures  # noqa: F401
from wgan.experiments import architectures  # noqa: F401
from wgan.experiments import momentum  # noqa: F401
from wgan.experiments import generator_only  # noqa: F401
from wgan.experiments import mode_hopping  # noqa: F401
from wgan.experiments import refinement  # noqa: F401
from wgan.experiments import likelihood  # noqa: F401
from wgan.experiments import attributes  # noqa: F401

# isort: on
from wgan.experiments.framework import (
    EXPERIMENTS,
    Experiment,
    ExperimentResult,
    experiment_dir,
    make_settings,
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
    name: str, overrides: Sequence[str] = (), out_dir: str | Path = "runs", quick: bool = False
) -> ExperimentResult:
    """Run experiment ``name`` in a new run directory, at its defaults or, with ``quick``, at
    its quick size; ``key=value`` overrides apply on top, under the settings' own names or the
    training-config names they mirror (``train.steps=500`` for ``steps=500``)."""
    experiment = get_experiment(name)
    settings = make_settings(experiment, overrides, quick)
    return experiment.run(settings, experiment_dir(out_dir, name))


__all__ = ["EXPERIMENTS", "ExperimentResult", "get_experiment", "run_experiment"]
