r"""The divergence estimate a trained critic implies, evaluated on many samples.

Every objective (:mod:`wgan.objectives`) turns critic outputs on real and generated samples into
a loss and an ``estimate`` of the divergence its optimal critic measures: the Jensen-Shannon
divergence for the minimax GAN (Goodfellow et al. 2014, Thm. 1: at the optimal discriminator
:math:`V = 2\,\mathrm{JS} - 2\log 2`), the Wasserstein-1 distance for WGAN (Arjovsky et al. 2017,
Kantorovich-Rubinstein duality :math:`W_1 = \sup_{\lVert D\rVert_L \le 1} E_p D - E_q D`), an
f-divergence for f-GAN (Nowozin et al. 2016, the variational bound
:math:`D_f \ge \sup_T E_p T - E_q f^*(T)`), total variation for the hinge loss and the
triangular discrimination for LSGAN.

During training that estimate is computed on one minibatch at a time and is noisy. Here it is
computed on ``n`` fresh samples: the critic's raw outputs are collected over all real and all
generated samples (in chunks of ``batch_size`` to bound memory) and ``critic_loss`` is called
**once** on the concatenated outputs. The objectives *average* over the batch inside
non-linear formulas (e.g. f-GAN's :math:`E_q f^*(T)` or a log-mean), so averaging per-chunk
estimates would be wrong in general; collecting the outputs first gives exactly the value of
one giant batch.

For a fixed critic the result is an unbiased Monte-Carlo estimate of the critic's *variational
objective*, which is a lower bound on the divergence (it equals the divergence only at the
optimal critic, and for WGAN only if the critic is 1-Lipschitz).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from wgan.errors import WganError
from wgan.objectives.base import Objective, as_batch

__all__ = ["critic_estimate", "critic_outputs", "trainer_critic_estimate"]


def _check_batch(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise WganError(f"{name} must be a torch.Tensor batch (B, ...), got {type(x).__name__}")
    if x.ndim == 0 or x.shape[0] == 0:
        raise WganError(f"{name} must be a non-empty batch (B, ...), got shape {tuple(x.shape)}")
    return x


def _device_of(module: nn.Module) -> torch.device | None:
    p = next(module.parameters(), None)
    if p is None:
        p = next(module.buffers(), None)
    return None if p is None else p.device


def critic_outputs(critic: nn.Module, x: Tensor, batch_size: int = 4096) -> Tensor:
    """Raw critic outputs ``(B,)`` on ``x`` ``(B, ...)``, in chunks, without gradients.

    Does not change the critic's mode; callers that want eval mode set it (as
    :func:`critic_estimate` does). Inputs are moved to the critic's device and, for floating
    inputs, to its parameter dtype.
    """
    x = _check_batch(x, "x")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise WganError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = _device_of(critic)
    param = next(critic.parameters(), None)
    outs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            chunk = x[start : start + batch_size]
            if device is not None:
                chunk = chunk.to(device)
            if param is not None and chunk.is_floating_point():
                chunk = chunk.to(param.dtype)
            out = critic(chunk)
            if not isinstance(out, Tensor):
                raise WganError(f"the critic returned {type(out).__name__}, not a tensor")
            outs.append(as_batch(out))  # (b, 1) or (b,) -> (b,); other shapes raise
    return torch.cat(outs)  # (B,)


def critic_estimate(
    critic: nn.Module,
    objective: Objective,
    real: Tensor,
    fake: Tensor,
    batch_size: int = 4096,
) -> dict[str, Any]:
    r"""The objective's divergence estimate for ``critic`` on all of ``real`` and ``fake``.

    Computes :math:`o_r = D(x_{\text{real}})`, :math:`o_f = D(x_{\text{fake}})` over all
    samples (chunks of ``batch_size``, under ``torch.no_grad`` and with the critic temporarily
    in eval mode, so BatchNorm uses its running statistics and spectral normalisation does not
    advance its power iteration; the modes are restored afterwards), then calls
    ``objective.critic_loss(o_r, o_f)`` once. The result does not depend on ``batch_size``.

    Args:
        critic: ``(B, ...) -> (B, 1)`` or ``(B,)``.
        objective: a :class:`wgan.objectives.Objective` (e.g. ``trainer.loss.objective``).
        real: data samples ``(B_r, ...)``.
        fake: generated samples ``(B_f, ...)`` (the sizes may differ).
        batch_size: chunk size for the critic's forward passes.

    Returns:
        ``{"estimate": float, "estimate_name": objective.estimate_name, "loss": float (the
        critic loss, without any gradient penalty), "n_real": int, "n_fake": int,
        "terms": {name: float} (every scalar critic_loss returned)}``.

    Raises:
        WganError: empty or non-tensor batches, a bad ``batch_size``, or a critic output that is
            not one scalar per sample.
    """
    real = _check_batch(real, "real")
    fake = _check_batch(fake, "fake")
    if real.shape[1:] != fake.shape[1:]:
        raise WganError(
            f"real and fake samples differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}"
        )
    flags = [(m, m.training) for m in critic.modules()]
    critic.eval()
    try:
        out_real = critic_outputs(critic, real, batch_size)  # (B_r,)
        out_fake = critic_outputs(critic, fake, batch_size)  # (B_f,)
    finally:
        for m, t in flags:
            m.training = t
    with torch.no_grad():
        terms = objective.critic_loss(out_real, out_fake)
    values = {k: float(v) for k, v in terms.items() if isinstance(v, Tensor) and v.numel() == 1}
    return {
        "estimate": values["estimate"],
        "estimate_name": objective.estimate_name,
        "loss": values["loss"],
        "n_real": int(real.shape[0]),
        "n_fake": int(fake.shape[0]),
        "terms": values,
    }


def trainer_critic_estimate(trainer: Any, n: int = 10000, seed: int = 0) -> dict[str, Any]:
    """:func:`critic_estimate` for a :class:`wgan.training.trainer.Trainer` on ``n`` fresh samples
    each.

    Real samples come from ``trainer.dataset`` and fakes from ``trainer.gen.sample``, both with
    one new ``torch.Generator(seed)`` on the trainer's device (the training RNG is untouched), so
    the value is reproducible. The objective is ``trainer.loss.objective``; the constraint's
    penalty is *not* included (the estimate is the objective's own).

    Returns:
        the :func:`critic_estimate` dict plus ``"step"`` (the trainer's step) and ``"seed"``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise WganError(f"n must be a positive integer, got {n!r}")
    device = getattr(trainer, "device", None) or torch.device("cpu")
    g = torch.Generator(device=device).manual_seed(int(seed))
    real = trainer.dataset.sample(n, generator=g, device=device)  # (n, dim)
    with torch.no_grad():
        fake = torch.cat(
            [trainer.gen.sample(min(4096, n - i), g) for i in range(0, n, 4096)]
        )  # (n, dim)
    out = critic_estimate(trainer.critic, trainer.loss.objective, real, fake)
    out["step"] = int(getattr(trainer, "step", 0))
    out["seed"] = int(seed)
    return out
