"""Experiments that reproduce published claims about GANs and WGANs, each writing figures and
numbers to a run dir (the claims and their papers are in each module's docstring).

Registered here, in one explicit place. ``run_experiment(name, overrides)`` builds the settings
(fast laptop-CPU defaults; ``key=value`` overrides are type-checked), creates a numbered run
directory ``<out_dir>/NNNNN-exp-<name>`` and runs it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from wgan.errors import ConfigError
from wgan.experiments import (
    architectures,
    clipping_vs_penalty,
    discrete_data,
    f_divergences,
    generator_only,
    improved_techniques,
    likelihood,
    loss_vs_quality,
    mode_collapse,
    mode_hopping,
    momentum,
    overfitting,
    parallel_lines,
    random_architectures,
)
from wgan.experiments.common import Experiment, ExperimentResult, apply_overrides, experiment_dir

EXPERIMENTS: dict[str, Experiment] = {
    name: Experiment(name, module.DESCRIPTION, module.SETTINGS, module.run)
    for name, module in (
        ("parallel-lines", parallel_lines),
        ("clipping-vs-penalty", clipping_vs_penalty),
        ("loss-vs-quality", loss_vs_quality),
        ("mode-collapse", mode_collapse),
        ("overfitting", overfitting),
        ("f-divergences", f_divergences),
        ("improved-techniques", improved_techniques),
        ("discrete-data", discrete_data),
        ("random-architectures", random_architectures),
        ("architectures", architectures),
        ("momentum", momentum),
        ("generator-only", generator_only),
        ("mode-hopping", mode_hopping),
        ("likelihood", likelihood),
    )
}


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
