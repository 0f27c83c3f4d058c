"""The finiteness check a run makes before every save: nan or inf in weights, samples, scores.

A run whose weights or outputs have become nan or inf must never overwrite its last good
checkpoint; the trainer and the sweep call :func:`non_finite_parts` through
:meth:`wgan.training.run.Run.non_finite_parts`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

PROBE_SAMPLES = 64  # generator samples scored by the finiteness check before every save


@torch.no_grad()
def non_finite_parts(run: Any, probe: bool = True) -> list[str]:
    """The parts of the state that hold nan or inf (an empty list when all is finite).

    One fused reduction per part (the largest absolute value of every tensor,
    ``torch._foreach_norm(ord=inf)``, which is nan or inf exactly when a value is) and one
    host synchronisation in all. With ``probe``, also :data:`PROBE_SAMPLES` samples of the
    generator used for sampling and the critic's scores on them, from a fixed seed in eval
    mode (neither the training RNG nor batch-norm statistics are touched): weights that are
    finite but so large that the networks overflow are caught too.
    """
    names: list[str] = []
    flags: list[Tensor] = []
    for name, tensors in run.state_tensors().items():
        if tensors:
            norms = torch._foreach_norm(tensors, math.inf)
            largest = torch.stack([v.float().to(run.device) for v in norms])
            flags.append(largest.isfinite().all())
            names.append(name)
    if probe:
        x, scores = _probe(run)
        flags += [x.isfinite().all(), scores.isfinite().all()]
        names += ["generator samples", "critic scores"]
    if not flags:
        return []
    finite = torch.stack([f.to(run.device) for f in flags]).tolist()
    return [name for name, ok in zip(names, finite, strict=True) if not ok]


def _probe(run: Any) -> tuple[Tensor, Tensor]:
    """A few samples of the sampling generator and the critic's scores on them (eval mode)."""
    gen, critic = run.sampler, run.critic
    g = torch.Generator(device=run.device).manual_seed(0)
    draw = getattr(gen, "draw_conditions", None)  # uniform classes or attribute vectors
    labels = None if draw is None else draw(PROBE_SAMPLES, g, run.device)
    modes = gen.training, critic.training
    gen.eval()
    critic.eval()
    try:
        x = gen.sample(PROBE_SAMPLES, g, labels)
        scores = run.critic_fn(labels)(x)
    finally:
        gen.train(modes[0])
        critic.train(modes[1])
    return x, scores
