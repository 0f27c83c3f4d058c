"""Shared pieces of the WGAN-GP paper's robustness studies on the digits (Gulrajani et al. 2017,
sec. 5.1): the training methods with their published optimisers, one run config per (method,
architecture), the study that trains them, and the digit Inception score of each run.

Both experiments (:mod:`wgan.experiments.random_architectures`, :mod:`wgan.experiments.
architectures`) describe an architecture as config overrides of the ``generator.*`` and ``critic.*``
keys (:mod:`wgan.nets.build`), and train every run as an ordinary run directory through
:func:`wgan.scale.study.run_study`, so an interrupted experiment re-run with the same settings in
the same folder skips the finished runs, and ``launcher=ray`` / ``jobs=K`` spread them out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wgan.config import Config, resolve
from wgan.scale.study import run_study

#: method -> (preset, overrides, label). The standard GAN is DCGAN's non-saturating game with
#: Adam 2e-4, betas (0.5, 0.999), one critic step (Radford et al. 2015); LSGAN the same with
#: least squares (Mao et al. 2017); WGAN with clipping RMSprop 5e-5, c = 0.01, 5 critic steps
#: (Arjovsky et al. 2017); WGAN-GP Adam 1e-4, betas (0, 0.9), lambda 10, 5 critic steps
#: (Gulrajani et al. 2017).
METHODS: dict[str, tuple[str, list[str], str]] = {
    "gan": ("gan", ["objective.name=nonsaturating"], "DCGAN (standard GAN)"),
    "lsgan": ("gan", ["objective.name=least_squares"], "LSGAN"),
    "wgan-clip": ("wgan", [], "WGAN (clipping)"),
    "wgan-gp": ("wgan-gp", [], "WGAN-GP"),
}

#: Methods whose critic takes a gradient penalty: batch norm in D becomes layer norm (the
#: penalty is per sample; Gulrajani et al. 2017, sec. 4).
PENALISED = ("wgan-gp",)


def method_config(
    method: str,
    name: str,
    arch: Sequence[str],
    *,
    resolution: int,
    batch_size: int,
    steps: int,
    seed: int,
    device: str,
    eval_samples: int,
    latent_dim: int = 64,
) -> Config:
    """The run config of ``method`` with the architecture ``arch`` (``generator.*`` /
    ``critic.*`` overrides) on the embedded digits at ``resolution``.

    ``critic.norm=batch`` in ``arch`` becomes layer norm for a penalised method. No EMA of G,
    no intermediate evaluation, figure or checkpoint: one evaluation (with the digit Inception
    score) and one checkpoint at the end.
    """
    preset, method_overrides, _ = METHODS[method]
    arch = list(arch)
    if method in PENALISED:
        arch = ["critic.norm=layer" if a == "critic.norm=batch" else a for a in arch]
    cfg = resolve(
        preset,
        [
            "data.name=digits",
            f"data.resolution={resolution}",
            f"data.batch_size={batch_size}",
            "generator.arch=dcgan",
            "critic.arch=dcgan",
            f"generator.latent_dim={latent_dim}",
            *method_overrides,
            *arch,
            f"train.steps={steps}",
            f"train.seed={seed}",
            f"train.device={device}",
            f"train.eval_samples={eval_samples}",
            "train.ema=0",
            "train.progress=false",
            "train.eval_every=0",
            "train.figure_every=0",
            "train.checkpoint_every=0",
        ],
    )
    cfg.name = name
    return cfg


def train_all(
    runs: Sequence[tuple[str, Config]],
    study_dir: Path,
    launcher: str,
    jobs: int,
    address: str | None,
    threads: int,
) -> dict[str, dict[str, Any]]:
    """Train the ``(name, config)`` runs with :func:`wgan.scale.study.run_study` in ``study_dir``;
    returns name -> record (``status``, ``metrics``, ``error``, ``run_dir``, ``seconds``)."""
    records = run_study(
        runs,
        study_dir,
        launcher=launcher,
        jobs=jobs,
        address=address or None,
        threads=threads or None,
    )
    return {r["name"]: r for r in records}


def digit_is(record: dict[str, Any] | None) -> float | None:
    """The digit Inception score of a finished run's final evaluation (None: failed/diverged)."""
    if not record or record.get("status") not in ("done", "skipped", "resumed"):
        return None
    value = (record.get("metrics") or {}).get("digit_is")
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
