"""Optimisers as pure tensor updates: one implementation for single runs, sweeps and compiled steps.

Adam (Kingma & Ba 2015), RMSProp (Tieleman & Hinton 2012) and SGD with momentum, each written
once as an in-place update of a list of parameters from a list of gradients and a state. The
same function serves

* a single eager run (hyperparameters are Python floats),
* a compiled or CUDA-graph-captured step (the step count is a tensor in the state, so no
  recompilation and no host synchronisation),
* a sweep of K runs under :func:`torch.func.vmap`: every hyperparameter may be a tensor holding
  one value per run; inside ``vmap`` it is a 0-d tensor, so the update never sees the stacking.

The maths, with torch's conventions (L2 weight decay added to the gradient):

* Adam: g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), eps = 1e-8.
* RMSProp (alpha 0.99, eps 1e-8): v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps).
* SGD with momentum mu = betas[0] (dampening 0): buf = mu buf + g (buf starts at 0, so the first
  buffer is g, as in torch); p -= lr buf.

``tests/gan/test_optim.py`` checks each against :mod:`torch.optim` and checks that a per-run stacked
update equals the separate updates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from wgan.errors import WganError

Scalar = float | Tensor  # one value for every run, or a tensor (one value per run under vmap)

EPS = 1e-8
RMSPROP_ALPHA = 0.99
STATE_KEYS = {"adam": ("exp_avg", "exp_avg_sq"), "rmsprop": ("square_avg",), "sgd": ("momentum",)}


def hyper(lr: Scalar, betas: Sequence[Scalar], weight_decay: Scalar) -> dict[str, Scalar]:
    """One optimiser's hyperparameters as a dict (a pytree: floats, or per-run tensors)."""
    return {"lr": lr, "beta1": betas[0], "beta2": betas[1], "weight_decay": weight_decay}


def init_state(name: str, params: Sequence[Tensor]) -> dict[str, Any]:
    """A fresh state for optimiser ``name``: zero buffers like ``params`` and a step count.

    ``step`` is a float32 tensor on the parameters' device (as torch's capturable optimisers
    keep it), so bias corrections are computed on the device.
    """
    if name not in STATE_KEYS:
        raise WganError(f"unknown optimiser '{name}' (adam, rmsprop or sgd)")
    device = params[0].device if params else torch.device("cpu")
    state: dict[str, Any] = {k: [torch.zeros_like(p) for p in params] for k in STATE_KEYS[name]}
    state["step"] = torch.zeros((), dtype=torch.float32, device=device)
    return state


@torch.no_grad()
def update_(
    name: str,
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state: dict[str, Any],
    h: dict[str, Scalar],
) -> None:
    """One in-place optimiser step of ``params`` (and ``state``) from ``grads``."""
    state["step"].add_(1)
    if name == "adam":
        _adam(params, grads, state, h)
    elif name == "rmsprop":
        _rmsprop(params, grads, state, h)
    elif name == "sgd":
        _sgd(params, grads, state, h)
    else:
        raise WganError(f"unknown optimiser '{name}' (adam, rmsprop or sgd)")


def _decayed(p: Tensor, g: Tensor, wd: Scalar) -> Tensor:
    if isinstance(wd, Tensor) or wd != 0:
        return g + wd * p
    return g


def bias_correction(beta: Scalar, t: Tensor) -> Tensor:
    """1 - beta^t, as -expm1(t log beta): no cancellation for beta near 1 (1 - 0.999^t in
    float32 loses five digits at t = 1); beta = 0 gives 1."""
    if isinstance(beta, Tensor):
        log_beta = torch.log(beta.to(t.dtype))  # log 0 = -inf: expm1(-inf) = -1
    else:
        log_beta = math.log(beta) if beta > 0 else -math.inf
    return -torch.expm1(t * log_beta)


def _adam(params, grads, state, h) -> None:
    t = state["step"]
    b1, b2 = h["beta1"], h["beta2"]
    step_size = h["lr"] / bias_correction(b1, t)  # 0-d tensor: lr / (1 - b1^t)
    bias2_sqrt = bias_correction(b2, t).sqrt()
    for p, g, m, v in zip(params, grads, state["exp_avg"], state["exp_avg_sq"], strict=True):
        g = _decayed(p, g, h["weight_decay"])
        m.mul_(b1).add_(g * (1 - b1))
        v.mul_(b2).add_(g * g * (1 - b2))
        denom = (v.sqrt() / bias2_sqrt).add_(EPS)
        p.sub_(step_size * m / denom)


def _rmsprop(params, grads, state, h) -> None:
    for p, g, v in zip(params, grads, state["square_avg"], strict=True):
        g = _decayed(p, g, h["weight_decay"])
        v.mul_(RMSPROP_ALPHA).add_(g * g * (1 - RMSPROP_ALPHA))
        p.sub_(h["lr"] * g / v.sqrt().add_(EPS))


def _sgd(params, grads, state, h) -> None:
    for p, g, buf in zip(params, grads, state["momentum"], strict=True):
        g = _decayed(p, g, h["weight_decay"])
        buf.mul_(h["beta1"]).add_(g)  # beta1 = 0: plain SGD (buf = g)
        p.sub_(h["lr"] * buf)


def lr_factor(step: int | Tensor, total: int, schedule: str) -> float | Tensor:
    """The learning-rate multiplier after ``step`` generator iterations.

    ``linear``: 1 - step / total, floored at 0 (the WGAN-GP paper's CIFAR-10 schedule, to 0 over
    training); ``none``: 1.
    """
    if schedule != "linear":
        return 1.0
    frac = step / max(1, total)
    if isinstance(frac, Tensor):
        return (1.0 - frac).clamp_min(0.0)
    return max(0.0, 1.0 - frac)


def state_to_cpu(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpointable copy of an optimiser state (lists of tensors and the step count)."""
    return {
        k: ([t.detach().cpu().clone() for t in v] if isinstance(v, list) else v.cpu().clone())
        for k, v in state.items()
    }


def load_state_(name: str, state: dict[str, Any], saved: dict[str, Any]) -> None:
    """Copy a saved state into ``state`` in place; a different optimiser kind is refused."""
    keys = set(STATE_KEYS[name]) | {"step"}
    if set(saved) != keys:
        raise WganError(
            f"the checkpoint's optimiser state ({', '.join(sorted(saved))}) is not a {name} "
            "state: the optimiser kind of a run cannot change on resume"
        )
    for key in STATE_KEYS[name]:
        if len(saved[key]) != len(state[key]):
            raise WganError(
                f"the checkpoint's optimiser has {len(saved[key])} tensors, not {len(state[key])}"
            )
        for dst, src in zip(state[key], saved[key], strict=True):
            if dst.shape != src.shape:
                raise WganError(
                    f"optimiser state of shape {tuple(src.shape)} does not fit {tuple(dst.shape)}"
                )
            dst.copy_(src)
    state["step"].copy_(saved["step"])
